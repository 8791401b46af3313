#pragma once
// Client sockets are generic stream sockets so one code path serves TCP (PORT/BIND)
// and Unix sockets (SOCKET, docs/protocol.md#listening).
#include <boost/asio/generic/stream_protocol.hpp>
#include <boost/asio/basic_socket_acceptor.hpp>
#include <boost/asio/io_context.hpp>

namespace sluice::gateway {

namespace asio = boost::asio;
using Socket = asio::generic::stream_protocol::socket;
using Acceptor = asio::basic_socket_acceptor<asio::generic::stream_protocol>;

}  // namespace sluice::gateway
