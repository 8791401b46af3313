#pragma once
// The clients one worker owns, and the indexes the system channels find them by
// (docs/protocol.md#system-channels: `kill` and `filters_changed` name an access token
// or an account). Used on the worker's thread only; the count is readable anywhere.
#include <atomic>
#include <cstdint>
#include <memory>
#include <unordered_map>
#include <vector>

namespace sluice::gateway {

class Client;

class ClientRegistry {
 public:
  void add(std::shared_ptr<Client> client);
  // Takes the client out and hands back the registry's reference: the caller lets
  // go of it later, never inside a loop over clients. Null when it was not here.
  std::shared_ptr<Client> remove(Client& client);

  const std::vector<std::shared_ptr<Client>>& all() const { return clients_; }
  // Copies, as ending a client edits the indexes.
  std::vector<Client*> with_access_token(int64_t access_token_id) const;
  std::vector<Client*> of_account(int64_t account_id) const;

  // Any thread (draining, metrics).
  size_t size_relaxed() const { return size_.load(std::memory_order_relaxed); }

 private:
  std::vector<std::shared_ptr<Client>> clients_;
  std::atomic<size_t> size_{0};
  std::unordered_map<int64_t, std::vector<Client*>> by_access_token_;
  std::unordered_map<int64_t, std::vector<Client*>> by_account_;
};

}  // namespace sluice::gateway
