-- Wireshark dissector for the tcpcan protocol, versions 1 and 2 (PROTOCOL.md).
--
-- Installed in Wireshark's global Lua plugin folder, or by hand:
--   tshark -X lua_script:tcpcan.lua -r capture.pcap -V
-- TCP ports 20010 (tcpcan) and 3333 (canip_peer's port) decode as tcpcan; use "Decode As"
-- for others. Messages are reassembled across TCP segments. Version-1 'd' payloads are Linux
-- can_frame/canfd_frame structs and go to Wireshark's own SocketCAN dissectors as well.
--
-- Every message is decoded by its prefix, so a capture that starts mid-connection still
-- decodes; where both directions were captured from the start, a message not allowed in the
-- connection's state (before or after agreement, in version 1 or 2) is named as malformed.
-- The summary field tcpcan.summary uses PROTOCOL.md's test vector notation
-- ("f id=123 len=3 data=112233"), and tcpcan.error names a malformed message with the error
-- names PROTOCOL.md uses.

local tcpcan = Proto("tcpcan", "tcpcan (CAN over TCP)")

local MESSAGE_NAMES = {
    [0x76] = "v: version", [0x64] = "d: frame (version 1)", [0x68] = "h: features",
    [0x66] = "f: frame", [0x70] = "p: ping", [0x71] = "q: pong", [0x73] = "s: subscribe",
    [0x63] = "c: close", [0x62] = "b: bus request", [0x6B] = "k: acknowledgement", [0x72] = "r: resume request",
    [0x61] = "a: resume accepted", [0x74] = "t: session token",
}
local CLOSE_REASONS = {
    [0] = "normal close", [1] = "shutting down", [2] = "protocol error", [3] = "peer silent too long",
    [4] = "no agreement in time", [5] = "server has no room for another client", [6] = "overload",
    [7] = "unsupported request",
}
local FD_LENGTHS = { [0] = true, true, true, true, true, true, true, true, true,
    [12] = true, [16] = true, [20] = true, [24] = true, [32] = true, [48] = true, [64] = true }

local F = tcpcan.fields
F.prefix = ProtoField.uint8("tcpcan.prefix", "Prefix", base.HEX, MESSAGE_NAMES)
F.length = ProtoField.uint8("tcpcan.length", "Payload length", base.DEC)
F.summary = ProtoField.string("tcpcan.summary", "Summary")
F.error = ProtoField.string("tcpcan.error", "Error")
F.version = ProtoField.uint32("tcpcan.version", "Version", base.DEC)
F.features = ProtoField.uint32("tcpcan.features", "Features", base.HEX)
F.feature_seq = ProtoField.bool("tcpcan.features.seq", "SEQ (sequence numbers)", 32, nil, 0x00000001)
F.feature_ts = ProtoField.bool("tcpcan.features.ts", "TS (timestamps)", 32, nil, 0x00000002)
F.feature_resume = ProtoField.bool("tcpcan.features.resume", "RESUME (acknowledgements, session resume)", 32, nil, 0x00000004)
F.feature_bus = ProtoField.bool("tcpcan.features.bus", "BUS (bus request)", 32, nil, 0x00000008)
F.bus_name = ProtoField.string("tcpcan.bus.name", "Bus name", base.ASCII)
F.next_expected = ProtoField.uint32("tcpcan.next_expected", "Next sequence expected", base.DEC)
F.session_token = ProtoField.uint64("tcpcan.session_token", "Session token", base.HEX)
F.flags = ProtoField.uint8("tcpcan.frame.flags", "Flags", base.HEX)
F.flag_ext = ProtoField.bool("tcpcan.frame.ext", "EXT (29-bit identifier)", 8, nil, 0x01)
F.flag_rtr = ProtoField.bool("tcpcan.frame.rtr", "RTR (remote request)", 8, nil, 0x02)
F.flag_err = ProtoField.bool("tcpcan.frame.err", "ERR (error frame)", 8, nil, 0x04)
F.flag_fd = ProtoField.bool("tcpcan.frame.fd", "FD (CAN FD)", 8, nil, 0x08)
F.flag_brs = ProtoField.bool("tcpcan.frame.brs", "BRS (bit rate switch)", 8, nil, 0x10)
F.flag_esi = ProtoField.bool("tcpcan.frame.esi", "ESI (error state indicator)", 8, nil, 0x20)
F.flag_seq = ProtoField.bool("tcpcan.frame.seq_present", "SEQ present", 8, nil, 0x40)
F.flag_ts = ProtoField.bool("tcpcan.frame.ts_present", "TS present", 8, nil, 0x80)
F.id = ProtoField.uint32("tcpcan.frame.id", "Identifier", base.HEX)
F.len = ProtoField.uint8("tcpcan.frame.len", "Data length", base.DEC)
F.seq = ProtoField.uint32("tcpcan.frame.seq", "Sequence number", base.DEC)
F.timestamp = ProtoField.uint64("tcpcan.frame.timestamp", "Timestamp (microseconds since the epoch)", base.DEC)
F.data = ProtoField.bytes("tcpcan.frame.data", "Data")
F.can_id = ProtoField.uint32("tcpcan.d.can_id", "can_id (little-endian)", base.HEX)
F.d_flags = ProtoField.uint8("tcpcan.d.fd_flags", "canfd_frame flags", base.HEX)
F.token = ProtoField.uint32("tcpcan.token", "Token", base.HEX)
F.sub_op = ProtoField.uint8("tcpcan.subscribe.op", "Operation", base.DEC, { [0] = "replace", [1] = "append" })
F.sub_count = ProtoField.uint8("tcpcan.subscribe.count", "Entries", base.DEC)
F.sub_entry = ProtoField.string("tcpcan.subscribe.entry", "Entry")
F.sub_kind = ProtoField.uint8("tcpcan.subscribe.kind", "Kind", base.HEX)
F.sub_a = ProtoField.uint32("tcpcan.subscribe.a", "A (low bound or identifier)", base.HEX)
F.sub_b = ProtoField.uint32("tcpcan.subscribe.b", "B (high bound or mask)", base.HEX)
F.close_reason = ProtoField.uint8("tcpcan.close.reason", "Reason", base.DEC, CLOSE_REASONS)
F.close_text = ProtoField.string("tcpcan.close.text", "Text", base.UNICODE)
F.skipped = ProtoField.bytes("tcpcan.skipped", "Optional message, skipped")

local E_MALFORMED = ProtoExpert.new("tcpcan.malformed", "Malformed tcpcan message",
    expert.group.MALFORMED, expert.severity.ERROR)
tcpcan.experts = { E_MALFORMED }

-- Wireshark's SocketCAN dissectors: can_id in host byte order, which is the wire's
-- little-endian on every host Debian runs Wireshark on that matters here (x86, arm64).
local can_dissector = Dissector.get("can-hostendian")
local canfd_dissector = Dissector.get("canfd")

local function hex(range)
    if range == nil or range:len() == 0 then return "" end
    return tostring(range:bytes()):upper()
end

local function id_text(id)
    return string.format("%X", id)
end

-- PROTOCOL.md's frame description: "f id=123 ext fd brs len=12 seq=1 ts=1 data=0001..."
local function frame_text(letter, id, ext, rtr, err, fd, brs, esi, len, seq, ts, data)
    local parts = { letter, "id=" .. id_text(id) }
    if ext then parts[#parts + 1] = "ext" end
    if rtr then parts[#parts + 1] = "rtr" end
    if err then parts[#parts + 1] = "err" end
    if fd then parts[#parts + 1] = "fd" end
    if brs then parts[#parts + 1] = "brs" end
    if esi then parts[#parts + 1] = "esi" end
    parts[#parts + 1] = "len=" .. len
    if seq ~= nil then parts[#parts + 1] = "seq=" .. tostring(seq) end
    if ts ~= nil then parts[#parts + 1] = "ts=" .. tostring(ts) end
    if data ~= nil and data ~= "" then parts[#parts + 1] = "data=" .. data end
    return table.concat(parts, " ")
end

local function fail(tree, pinfo, range, name)
    tree:add(F.error, range, name)
    tree:add_proto_expert_info(E_MALFORMED, name)
    return "malformed (" .. name .. ")"
end

local function dissect_version(p, tree, pinfo)
    if p:len() ~= 4 then return fail(tree, pinfo, p, "bad_version_length") end
    tree:add(F.version, p)
    return "v " .. p:uint()
end

local function dissect_features(p, tree, pinfo)
    if p:len() ~= 4 then return fail(tree, pinfo, p, "bad_features_length") end
    local item = tree:add(F.features, p)
    item:add(F.feature_seq, p)
    item:add(F.feature_ts, p)
    item:add(F.feature_resume, p)
    item:add(F.feature_bus, p)
    return string.format("h %08X", p:uint())
end

-- 'b': a bus name, 1 to 64 printable ASCII characters without spaces (PROTOCOL.md 4.7).
local function dissect_bus(p, tree, pinfo)
    if p:len() < 1 or p:len() > 64 then return fail(tree, pinfo, p, "bad_bus_length") end
    for i = 0, p:len() - 1 do
        local c = p(i, 1):uint()
        if c <= 0x20 or c >= 0x7F then return fail(tree, pinfo, p, "bad_bus_name") end
    end
    tree:add(F.bus_name, p)
    return "b " .. p:string()
end

-- 'k' and 'a': the next sequence number expected (everything before it handled).
local function dissect_next_expected(letter, p, tree, pinfo)
    if p:len() ~= 4 then return fail(tree, pinfo, p, "bad_ack_length") end
    tree:add(F.next_expected, p)
    return string.format("%s %d", letter, p:uint())
end

local function token_text(p)
    return string.format("%08X%08X", p(0, 4):uint(), p(4, 4):uint())
end

local function dissect_resume_request(p, tree, pinfo)
    if p:len() ~= 12 then return fail(tree, pinfo, p, "bad_resume_length") end
    tree:add(F.session_token, p(0, 8))
    tree:add(F.next_expected, p(8, 4))
    return string.format("r %s %d", token_text(p), p(8, 4):uint())
end

local function dissect_session_token(p, tree, pinfo)
    if p:len() ~= 8 then return fail(tree, pinfo, p, "bad_token_length") end
    if p(0, 4):uint() == 0 and p(4, 4):uint() == 0 then return fail(tree, pinfo, p, "zero_token") end
    tree:add(F.session_token, p)
    return "t " .. token_text(p)
end

local function dissect_token(letter, p, tree, pinfo)
    if p:len() ~= 4 then return fail(tree, pinfo, p, "bad_ping_length") end
    tree:add(F.token, p)
    return string.format("%s %08X", letter, p:uint())
end

-- Version 1: the kernel's struct can_frame (16 bytes) or canfd_frame (72 bytes).
local function dissect_v1_frame(p, tree, pinfo, root)
    local n = p:len()
    if n ~= 16 and n ~= 72 then return fail(tree, pinfo, p, "bad_data_length") end
    local can_id = p(0, 4):le_uint()
    local len = p(4, 1):uint()
    local fd_flags = n == 72 and p(5, 1):uint() or 0
    local ext = bit.band(can_id, 0x80000000) ~= 0
    local rtr = bit.band(can_id, 0x40000000) ~= 0
    local err = bit.band(can_id, 0x20000000) ~= 0
    local id = bit.band(can_id, 0x1FFFFFFF)
    tree:add_le(F.can_id, p(0, 4))
    tree:add(F.id, p(0, 4), id)
    tree:add(F.len, p(4, 1))
    if n == 72 then tree:add(F.d_flags, p(5, 1)) end
    local fd = n == 72
    local valid = (fd and FD_LENGTHS[len] and not rtr) or (not fd and len <= 8)
    valid = valid and (ext or err or id <= 0x7FF) and (not err or len == 8)
    -- An error frame has no EFF on Linux: version 1 refuses ERR|EFF as version 2 does.
    valid = valid and not (err and ext)
    if not valid then return fail(tree, pinfo, p(4, 1), "invalid_frame") end
    local data = ""
    if not rtr and len > 0 then
        data = hex(p(8, len))
        tree:add(F.data, p(8, len))
    end
    -- Wireshark's own view of the struct, under its own protocol tree.
    local sub = fd and canfd_dissector or can_dissector
    if sub ~= nil then
        -- They write their own Info column; ours lists the tcpcan messages.
        local info = tostring(pinfo.cols.info)
        sub:call(p:tvb(), pinfo, root)
        pinfo.cols.info:clear_fence()
        pinfo.cols.info:set(info)
    end
    return frame_text("d", id, ext, rtr, err, fd, bit.band(fd_flags, 0x01) ~= 0, bit.band(fd_flags, 0x02) ~= 0,
        len, nil, nil, data)
end

-- Version 2: the compact frame.
local function dissect_frame(p, tree, pinfo)
    local n = p:len()
    if n < 6 then return fail(tree, pinfo, p, "bad_frame_length") end
    local flags = p(0, 1):uint()
    local ext, rtr, err = bit.band(flags, 0x01) ~= 0, bit.band(flags, 0x02) ~= 0, bit.band(flags, 0x04) ~= 0
    local fd, brs, esi = bit.band(flags, 0x08) ~= 0, bit.band(flags, 0x10) ~= 0, bit.band(flags, 0x20) ~= 0
    local has_seq, has_ts = bit.band(flags, 0x40) ~= 0, bit.band(flags, 0x80) ~= 0
    local flag_item = tree:add(F.flags, p(0, 1))
    for _, field in ipairs({ F.flag_ext, F.flag_rtr, F.flag_err, F.flag_fd, F.flag_brs, F.flag_esi, F.flag_seq,
        F.flag_ts }) do
        flag_item:add(field, p(0, 1))
    end
    local id = p(1, 4):uint()
    local len = p(5, 1):uint()
    tree:add(F.id, p(1, 4))
    tree:add(F.len, p(5, 1))
    local valid
    if fd then
        valid = FD_LENGTHS[len] and not rtr
    else
        valid = len <= 8 and not brs and not esi
    end
    valid = valid and id <= (ext and 0x1FFFFFFF or 0x7FF)
    if err then valid = valid and len == 8 and not ext and not fd and not rtr end
    if not valid then return fail(tree, pinfo, p(0, 1), "invalid_frame") end
    local expected = 6 + (has_seq and 4 or 0) + (has_ts and 8 or 0) + (rtr and 0 or len)
    if n ~= expected then return fail(tree, pinfo, p, "bad_frame_length") end
    local at = 6
    local seq, ts
    if has_seq then
        seq = p(at, 4):uint()
        tree:add(F.seq, p(at, 4))
        at = at + 4
    end
    if has_ts then
        ts = p(at, 8):uint64()
        tree:add(F.timestamp, p(at, 8))
        at = at + 8
    end
    local data = ""
    if not rtr and len > 0 then
        data = hex(p(at, len))
        tree:add(F.data, p(at, len))
    end
    return frame_text("f", id, ext, rtr, err, fd, brs, esi, len, seq, ts, data)
end

local function dissect_subscribe(p, tree, pinfo)
    local n = p:len()
    if n < 1 or (n - 1) % 9 ~= 0 or (n - 1) / 9 > 28 then
        return fail(tree, pinfo, p, "bad_subscribe_length")
    end
    local op = p(0, 1):uint()
    if op > 1 then return fail(tree, pinfo, p(0, 1), "bad_subscribe_op") end
    tree:add(F.sub_op, p(0, 1))
    tree:add(F.sub_count, p(0, 1), (n - 1) / 9):set_generated()
    local parts = { "s", op == 0 and "replace" or "append" }
    for at = 1, n - 1, 9 do
        local kind, a, b = p(at, 1):uint(), p(at + 1, 4):uint(), p(at + 5, 4):uint()
        local ext, inverted, mask = bit.band(kind, 0x01) ~= 0, bit.band(kind, 0x02) ~= 0, bit.band(kind, 0x04) ~= 0
        local width = ext and 0x1FFFFFFF or 0x7FF
        if bit.band(kind, 0xF8) ~= 0 or a > width or b > width or (not mask and a > b) then
            return fail(tree, pinfo, p(at, 9), "bad_filter_entry")
        end
        local text = (inverted and "!" or "") .. id_text(a) .. (mask and "/" or "-") .. id_text(b) .. (ext and "x" or "")
        local entry = tree:add(F.sub_entry, p(at, 9), text)
        entry:add(F.sub_kind, p(at, 1))
        entry:add(F.sub_a, p(at + 1, 4))
        entry:add(F.sub_b, p(at + 5, 4))
        parts[#parts + 1] = text
    end
    return table.concat(parts, " ")
end

local function dissect_close(p, tree, pinfo)
    if p:len() < 1 then return fail(tree, pinfo, p, "bad_close_length") end
    tree:add(F.close_reason, p(0, 1))
    local text = ""
    if p:len() > 1 then
        text = p(1):string(ENC_UTF_8)
        tree:add(F.close_text, p(1))
    end
    return string.format('c %d "%s"', p(0, 1):uint(), text)
end

-- What is allowed where (PROTOCOL.md sections 1 and 2) depends on the connection's state,
-- followed per TCP stream in capture order on the first pass and remembered per message.
-- A state is only known when both directions were seen from their first message (a 'v'),
-- so a capture that starts mid-connection, or holds one direction, is never blamed for it.
local tcp_stream_field = Field.new("tcp.stream")
local connections = {}      -- tcp.stream -> { first = {dir -> prefix}, proposal = {dir -> n}, version }
local state_errors = {}     -- "frame:index" -> error name, or false
local current_frame, message_index = nil, 0

local function connection_error(tvb, pinfo)
    if pinfo.number ~= current_frame then
        current_frame, message_index = pinfo.number, 0
    end
    message_index = message_index + 1
    local key = pinfo.number .. ":" .. message_index
    if pinfo.visited then
        return state_errors[key] or nil
    end
    local stream = tcp_stream_field()
    if stream == nil then return nil end
    local c = connections[stream.value]
    if c == nil then
        c = { first = {}, proposal = {}, version = nil }
        connections[stream.value] = c
    end
    local dir = tostring(pinfo.src) .. ":" .. pinfo.src_port
    local prefix, n = tvb(0, 1):uint(), tvb(1, 1):uint()
    if c.first[dir] == nil then c.first[dir] = prefix end
    local other
    for d, _ in pairs(c.first) do
        if d ~= dir then other = d end
    end
    local known = c.first[dir] == 0x76 and other ~= nil and c.first[other] == 0x76
    local err = nil
    if c.version == nil then
        if prefix == 0x76 then
            if n == 4 then
                local proposed = tvb(2, 4):uint()
                if proposed ~= 0 and other ~= nil and c.proposal[other] == proposed then
                    c.version = proposed
                end
                c.proposal[dir] = proposed
            end
        elseif known then
            err = "not_allowed_before_agreement"
        end
    elseif known then
        if prefix == 0x76 then
            err = "not_allowed_after_agreement"
        elseif c.version == 1 and (prefix == 0x68 or prefix == 0x66 or prefix == 0x70 or prefix == 0x71
            or prefix == 0x73 or prefix == 0x63 or prefix == 0x62 or prefix == 0x6B or prefix == 0x72
            or prefix == 0x61 or prefix == 0x74) then
            err = "not_allowed_in_version_1"
        elseif c.version >= 2 and prefix == 0x64 then
            err = "unknown_prefix"
        end
    end
    state_errors[key] = err or false
    return err
end

-- One whole message: prefix, length, payload.
local function dissect_message(tvb, pinfo, root)
    local prefix = tvb(0, 1):uint()
    local n = tvb(1, 1):uint()
    local tree = root:add(tcpcan, tvb(0, 2 + n))
    tree:add(F.prefix, tvb(0, 1))
    tree:add(F.length, tvb(1, 1))
    local p = n > 0 and tvb(2, n) or tvb(2, 0)
    local summary
    local state_error = connection_error(tvb, pinfo)
    if state_error then summary = fail(tree, pinfo, tvb(0, 1), state_error)
    elseif prefix == 0x76 then summary = dissect_version(p, tree, pinfo)
    elseif prefix == 0x64 then summary = dissect_v1_frame(p, tree, pinfo, root)
    elseif prefix == 0x68 then summary = dissect_features(p, tree, pinfo)
    elseif prefix == 0x66 then summary = dissect_frame(p, tree, pinfo)
    elseif prefix == 0x70 then summary = dissect_token("p", p, tree, pinfo)
    elseif prefix == 0x71 then summary = dissect_token("q", p, tree, pinfo)
    elseif prefix == 0x73 then summary = dissect_subscribe(p, tree, pinfo)
    elseif prefix == 0x63 then summary = dissect_close(p, tree, pinfo)
    elseif prefix == 0x62 then summary = dissect_bus(p, tree, pinfo)
    elseif prefix == 0x6B then summary = dissect_next_expected("k", p, tree, pinfo)
    elseif prefix == 0x61 then summary = dissect_next_expected("a", p, tree, pinfo)
    elseif prefix == 0x72 then summary = dissect_resume_request(p, tree, pinfo)
    elseif prefix == 0x74 then summary = dissect_session_token(p, tree, pinfo)
    elseif prefix >= 0x41 and prefix <= 0x5A then
        if n > 0 then tree:add(F.skipped, p) end
        summary = string.format("skip %s %d", string.char(prefix), n)
    else
        summary = fail(tree, pinfo, tvb(0, 1), "unknown_prefix")
    end
    tree:add(F.summary, tvb(0, 2 + n), summary):set_generated()
    tree:append_text(": " .. summary)
    return summary
end

-- Called by dissect_tcp_pdus once per whole message.
local function dissect_pdu(tvb, pinfo, root)
    local summary = dissect_message(tvb, pinfo, root)
    pinfo.cols.protocol = "tcpcan"
    -- Several messages in one segment: list them all in the Info column.
    local info = tostring(pinfo.cols.info)
    if info:find("^tcpcan: ") then
        pinfo.cols.info:append(", " .. summary)
    else
        pinfo.cols.info:set("tcpcan: " .. summary)
    end
    return tvb:len()
end

local function message_length(tvb, pinfo, offset)
    return 2 + tvb(offset + 1, 1):uint()
end

function tcpcan.dissector(tvb, pinfo, root)
    dissect_tcp_pdus(tvb, root, 2, message_length, dissect_pdu, true)
    return tvb:len()
end

local tcp_port = DissectorTable.get("tcp.port")
tcp_port:add(20010, tcpcan)
tcp_port:add(3333, tcpcan)
