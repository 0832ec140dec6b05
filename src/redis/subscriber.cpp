// The subscriber: its own Connection in subscriber mode, with what only that mode does (the subscription's
// replies, the heartbeat). It has a Client::Shared of its own: a subscription that keeps failing must not
// open the breaker that the command connections answer to.
#include "lagoon/redis/client.hpp"

#include <hiredis/hiredis.h>

#include "connection.hpp"

namespace lagoon::redis {

void Connection::on_subscription(redisAsyncContext* ac, void* reply, void*) {
  auto* r = static_cast<redisReply*>(reply);
  if (!r || r->type != REDIS_REPLY_ARRAY || r->elements < 3) return;
  auto* self = static_cast<Connection*>(ac->data);
  const std::string_view kind(r->element[0]->str ? r->element[0]->str : "", r->element[0]->len);
  if (kind == "subscribe") {
    self->became_ready();
    if (self->on_subscribed_) self->on_subscribed_();
  } else if (kind == "message" && r->element[2]->str && self->on_message_) {
    self->on_message_(std::string_view(r->element[2]->str, r->element[2]->len));
  }
}

// --- subscriber heartbeat -------------------------------------------------------------------------
// A subscription only listens, so a connection that died silently (a NAT or load balancer dropping
// an idle flow, a hung Redis) looks exactly like a quiet channel, and revocations would reach this
// process only by L1 expiry. Every interval the subscriber SUBSCRIBEs once more to a heartbeat
// channel — one of the few commands a subscribed connection may send, and Redis confirms it each
// time (a PING's reply is dropped by hiredis 0.14 in subscribed mode). An answer still missing when
// the next one is due drops the connection: live() turns false (L1 trust falls to one second) and
// the re-subscription invalidates L1. TCP keepalive would not do: a hung Redis behind a live TCP
// peer acknowledges every probe.
void Connection::arm_heartbeat(std::uint64_t gen) {
  heartbeat_.expires_after(heartbeat_interval_);
  heartbeat_.async_wait([self = shared_from_this(), gen](const boost::system::error_code& ec) {
    if (ec || gen != self->generation_ || !self->ctx_ || self->stopping_) return;
    if (self->heartbeat_outstanding_) {
      self->metrics_.heartbeats_missed.inc();
      self->drop("subscription heartbeat unanswered");
      return;
    }
    self->heartbeat_outstanding_ = true;
    const std::vector<std::string> args{"SUBSCRIBE", self->heartbeat_channel_};
    ArgvView v(args);
    redisAsyncCommandArgv(self->ctx_, &Connection::on_heartbeat, nullptr, v.argc(), v.argv.data(), v.lens.data());
    self->arm_heartbeat(gen);
  });
}

void Connection::on_heartbeat(redisAsyncContext* ac, void* reply, void*) {
  auto* r = static_cast<redisReply*>(reply);
  if (!r || r->type != REDIS_REPLY_ARRAY || r->elements < 1 || !r->element[0]->str) return;
  if (std::string_view(r->element[0]->str, r->element[0]->len) == "subscribe")
    static_cast<Connection*>(ac->data)->heartbeat_outstanding_ = false;
}

Subscriber::Subscriber(boost::asio::io_context& ioc, const config::Config& cfg, metrics::Registry& metrics,
                       std::string channel, OnMessage on_message, OnSubscribed on_subscribed,
                       std::shared_ptr<Locator> locator)
    : locator_(locator ? std::move(locator) : std::make_shared<Locator>(cfg, &metrics)),
      connection_(std::make_shared<Connection>(ioc, locator_, Connection::Mode::subscriber,
                                               std::make_shared<Client::Shared>(cfg, metrics),
                                               ConnectionMetrics(metrics, "subscriber"))) {
  connection_->subscribe_to(std::move(channel), std::move(on_message), std::move(on_subscribed),
                            cfg.redis_subscriber_heartbeat);
  follow_primary(*locator_, {connection_});
}

Subscriber::~Subscriber() { shutdown(); }

void Subscriber::start() {
  locator_->start();
  connection_->start();
}

void Subscriber::shutdown() noexcept {
  locator_->stop();
  connection_->shutdown();
}
bool Subscriber::live() const noexcept { return connection_->up(); }

}  // namespace lagoon::redis
