// The subscriber has a Client::Shared of its own: a subscription that keeps failing must not open the
// breaker that the command connections answer to.
#include "lagoon/redis/client.hpp"

#include "lagoon/config/url.hpp"
#include "connection.hpp"

namespace lagoon::redis {

Subscriber::Subscriber(boost::asio::io_context& ioc, const config::Config& cfg, metrics::Registry& metrics,
                       std::string channel, OnMessage on_message, OnSubscribed on_subscribed)
    : connection_(std::make_shared<Connection>(
          ioc, config::parse_redis_url(cfg.redis_url), Connection::Mode::subscriber,
          std::make_shared<Client::Shared>(cfg, metrics), ConnectionMetrics(metrics, "subscriber"))) {
  connection_->subscribe_to(std::move(channel), std::move(on_message), std::move(on_subscribed),
                            cfg.redis_subscriber_heartbeat);
}

Subscriber::~Subscriber() { shutdown(); }
void Subscriber::start() { connection_->start(); }
void Subscriber::shutdown() noexcept { connection_->shutdown(); }
bool Subscriber::live() const noexcept { return connection_->up(); }

}  // namespace lagoon::redis
