#include "gateway/connection_limits.hpp"

#include <sys/resource.h>

#include <algorithm>

namespace sluice::gateway {

ConnectionLimits::ConnectionLimits(size_t max_connections, size_t max_per_address, metrics::Gauge* open_gauge)
    : max_connections_(max_connections), max_per_address_(max_per_address), open_gauge_(open_gauge) {}

std::shared_ptr<ConnectionLimits::Ticket> ConnectionLimits::admit() {
  open_.fetch_add(1, std::memory_order_relaxed);
  if (open_gauge_) open_gauge_->inc();
  return std::shared_ptr<Ticket>(new Ticket(*this));
}

ConnectionLimits::Ticket::~Ticket() {
  limits_.open_.fetch_sub(1, std::memory_order_relaxed);
  if (limits_.open_gauge_) limits_.open_gauge_->dec();
  if (!address_claimed_) return;
  std::lock_guard lock(limits_.mutex_);
  release_address_locked();
}

void ConnectionLimits::Ticket::release_address_locked() {
  if (!address_claimed_) return;
  address_claimed_ = false;
  auto it = limits_.per_address_.find(address_);
  if (it != limits_.per_address_.end() && --it->second == 0) limits_.per_address_.erase(it);
}

bool ConnectionLimits::Ticket::within_connection_limit() const {
  // This connection is among the open ones it counts.
  return limits_.open_.load(std::memory_order_relaxed) <= limits_.max_connections_;
}

bool ConnectionLimits::Ticket::claim_address(const std::string& address) {
  if (address_claimed_ && address == address_) return true;
  if (limits_.max_per_address_ == 0) return true;
  std::lock_guard lock(limits_.mutex_);
  release_address_locked();
  if (address.empty()) return true;
  size_t& count = limits_.per_address_[address];
  if (count >= limits_.max_per_address_) {
    if (count == 0) limits_.per_address_.erase(address);
    return false;
  }
  ++count;
  address_ = address;
  address_claimed_ = true;
  return true;
}

size_t default_max_connections(size_t open_file_limit) {
  size_t headroom = std::max<size_t>(64, open_file_limit / 20);
  return open_file_limit > headroom ? open_file_limit - headroom : 1;
}

size_t default_max_connections() {
  struct rlimit files {};
  if (::getrlimit(RLIMIT_NOFILE, &files) != 0 || files.rlim_cur == RLIM_INFINITY) return default_max_connections(1u << 20);
  return default_max_connections(static_cast<size_t>(files.rlim_cur));
}

}  // namespace sluice::gateway
