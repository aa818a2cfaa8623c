// Everything of the tcpcan core in one include.
#pragma once

#include "tcpcan/candump_text.hpp"
#include "tcpcan/decoder.hpp"
#include "tcpcan/encoder.hpp"
#include "tcpcan/errors.hpp"
#include "tcpcan/filter.hpp"
#include "tcpcan/frame.hpp"
#include "tcpcan/interfaces.hpp"
#include "tcpcan/linux_frame.hpp"
#include "tcpcan/message.hpp"
#include "tcpcan/negotiation.hpp"
#include "tcpcan/profile.hpp"
#include "tcpcan/sequence.hpp"
#include "tcpcan/session.hpp"
#include "tcpcan/subscription.hpp"
