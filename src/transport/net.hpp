// The short names the transport's Asio and Beast code shares. Internal to src/transport.
#pragma once

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace boost::beast::http {}

namespace lagoon::transport {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
using asio::awaitable;
using tcp = asio::ip::tcp;
// An operation's error as a value in its result tuple, not an exception.
inline constexpr auto as_result = asio::as_tuple(asio::use_awaitable);

}  // namespace lagoon::transport
