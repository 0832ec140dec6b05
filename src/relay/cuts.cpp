#include "lagoon/relay/cuts.hpp"

#include <boost/asio/post.hpp>

namespace lagoon::relay {

Cuts::Registration::Registration(Cuts& cuts, boost::asio::any_io_executor executor, upstream::Exchange& exchange)
    : shared_(cuts.shared_), entry_(std::make_shared<Entry>()) {
  entry_->executor = std::move(executor);
  entry_->exchange = &exchange;
  std::lock_guard lock(shared_->mutex);
  shared_->entries.insert(entry_);
  if (shared_->cutting) {  // reached the upstream after the deadline
    entry_->cut = true;
    exchange.abort();
  }
}

Cuts::Registration::~Registration() {
  entry_->exchange = nullptr;  // a cut still queued for this executor finds nothing to abort
  std::lock_guard lock(shared_->mutex);
  shared_->entries.erase(entry_);
}

void Cuts::cut_all() {
  std::lock_guard lock(shared_->mutex);
  shared_->cutting = true;
  for (const auto& e : shared_->entries)
    boost::asio::post(e->executor, [e] {
      if (!e->exchange) return;
      e->cut = true;
      e->exchange->abort();
    });
}

}  // namespace lagoon::relay
