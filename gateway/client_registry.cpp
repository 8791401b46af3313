#include "gateway/client_registry.hpp"

#include <algorithm>

#include "gateway/client.hpp"

namespace sluice::gateway {
namespace {

void index_add(std::unordered_map<int64_t, std::vector<Client*>>& index, int64_t key, Client* client) {
  index[key].push_back(client);
}

void index_remove(std::unordered_map<int64_t, std::vector<Client*>>& index, int64_t key, Client* client) {
  auto it = index.find(key);
  if (it == index.end()) return;
  auto& list = it->second;
  auto found = std::find(list.begin(), list.end(), client);
  if (found != list.end()) {
    *found = list.back();
    list.pop_back();
  }
  if (list.empty()) index.erase(it);
}

std::vector<Client*> lookup(const std::unordered_map<int64_t, std::vector<Client*>>& index, int64_t key) {
  auto it = index.find(key);
  return it == index.end() ? std::vector<Client*>{} : it->second;
}

}  // namespace

void ClientRegistry::add(std::shared_ptr<Client> client) {
  Client& c = *client;
  c.registry_slot = static_cast<uint32_t>(clients_.size());
  clients_.push_back(std::move(client));
  size_.store(clients_.size(), std::memory_order_relaxed);
  index_add(by_access_token_, c.auth().access_token_id, &c);
  index_add(by_account_, c.auth().account_id, &c);
}

std::shared_ptr<Client> ClientRegistry::remove(Client& c) {
  const uint32_t slot = c.registry_slot;
  if (slot >= clients_.size() || clients_[slot].get() != &c) return nullptr;
  index_remove(by_access_token_, c.auth().access_token_id, &c);
  index_remove(by_account_, c.auth().account_id, &c);
  auto taken = std::move(clients_[slot]);
  if (slot + 1 != clients_.size()) {
    clients_[slot] = std::move(clients_.back());
    clients_[slot]->registry_slot = slot;
  }
  clients_.pop_back();
  size_.store(clients_.size(), std::memory_order_relaxed);
  return taken;
}

std::vector<Client*> ClientRegistry::with_access_token(int64_t access_token_id) const {
  return lookup(by_access_token_, access_token_id);
}

std::vector<Client*> ClientRegistry::of_account(int64_t account_id) const { return lookup(by_account_, account_id); }

}  // namespace sluice::gateway
