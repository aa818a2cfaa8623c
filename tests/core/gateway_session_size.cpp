// Probe for check_gateway_size.py: `nm -S` on this object reports the size of the array,
// which is sizeof the reference gateway's session as the target compiler lays it out.
#include "gateway_config.hpp"

unsigned char gateway_session_size_probe[sizeof(gateway::GatewaySession)];
