// sluice-tenants-load: what N instances with a few idle clients each ask of the shared
// auth and broker tiers (docs/hosting.md#cost). For every tenant of a tenants file it
// looks up each client's token (LookupToken with the tenant; the same token strings in
// every instance) and holds each client's `user` stream channels (timeline:<account>
// and timeline:<account>:notifications, with their `subscribed:` keys) through one
// BrokerSet of channel keys, as one gateway process would. It prints one JSON line when
// everything is held and keeps holding until stdin closes.
//
//   sluice-tenants-load --tenants FILE --broker ADDR --auth ADDR --clients 10
//                       --accounts ID,ID,... --tokens T,T,...
#include <grpcpp/grpcpp.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "common/broker_set.hpp"
#include "common/channel_key.hpp"
#include "common/env.hpp"
#include "common/grpc_channel.hpp"
#include "common/log.hpp"
#include "common/internal_tls.hpp"
#include "common/tenants_file.hpp"
#include "sluice/v1/auth.grpc.pb.h"

namespace {

std::vector<std::string> split(const std::string& text) {
  std::vector<std::string> out;
  std::stringstream in(text);
  for (std::string item; std::getline(in, item, ',');) {
    if (!item.empty()) out.push_back(item);
  }
  return out;
}

int usage(const char* why) {
  std::fprintf(stderr,
               "sluice-tenants-load: %s\nusage: sluice-tenants-load --tenants FILE --broker ADDR --auth ADDR "
               "--clients N --accounts ID,... --tokens T,...\n",
               why);
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  // stdout carries the one result line.
  sluice::log::set_level(sluice::log::Level::warn);
  std::string tenants_path, broker, auth;
  std::vector<std::string> accounts, tokens;
  size_t clients = 10;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string flag = argv[i], value = argv[i + 1];
    if (flag == "--tenants") tenants_path = value;
    else if (flag == "--broker") broker = value;
    else if (flag == "--auth") auth = value;
    else if (flag == "--clients") clients = std::stoul(value);
    else if (flag == "--accounts") accounts = split(value);
    else if (flag == "--tokens") tokens = split(value);
    else return usage(("unknown option " + flag).c_str());
  }
  if (tenants_path.empty() || broker.empty() || auth.empty() || accounts.empty() ||
      tokens.size() != accounts.size()) {
    return usage("--tenants, --broker, --auth and as many --tokens as --accounts are required");
  }
  sluice::Env env = sluice::Env::from_map({{"SLUICE_TENANTS_FILE", tenants_path}, {"SLUICE_TENANTS_RELOAD_MS", "0"}});
  auto file = sluice::TenantsFile::from_env(env);
  const auto tenants = file->current();
  const sluice::InternalTls no_tls;

  // Token lookups: every client of every tenant, a few in flight at once.
  auto stub = sluice::v1::Auth::NewStub(sluice::auth_channel(auth, no_tls));
  std::atomic<size_t> found{0}, failed{0};
  const auto started = std::chrono::steady_clock::now();
  for (const auto& tenant : tenants->all()) {
    for (size_t c = 0; c < clients; ++c) {
      grpc::ClientContext context;
      context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
      sluice::v1::TokenRequest request;
      request.set_token(tokens[c % tokens.size()]);
      request.set_tenant(tenant.name);
      sluice::v1::TokenReply reply;
      grpc::Status status = stub->LookupToken(&context, request, &reply);
      if (status.ok() && reply.found()) {
        ++found;
      } else {
        ++failed;
        if (failed <= 3) std::fprintf(stderr, "lookup failed for %s: %s\n", tenant.name.c_str(), status.error_message().c_str());
      }
    }
  }
  const double lookup_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();

  // The channels of each client's user stream, held as one gateway holds them.
  sluice::BrokerSetOptions options;
  options.addresses = broker;
  sluice::BrokerSet set(
      options, [&no_tls](const sluice::BrokerTarget& target) { return sluice::broker_channel(target, no_tls); }, "",
      "sluice-tenants-load", [](std::shared_ptr<const sluice::v1::ChannelEvent>) {});
  set.start();
  size_t held = 0;
  for (const auto& tenant : tenants->all()) {
    for (size_t c = 0; c < clients; ++c) {
      const std::string& account = accounts[c % accounts.size()];
      set.acquire(sluice::channel_key(tenant.name, "timeline:" + account), true);
      set.acquire(sluice::channel_key(tenant.name, "timeline:" + account + ":notifications"), true);
      held += 2;
    }
  }
  for (int i = 0; i < 300 && !set.connected(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  std::printf(
      "{\"tenants\":%zu,\"clients_per_tenant\":%zu,\"lookups_found\":%zu,\"lookups_failed\":%zu,"
      "\"lookup_seconds\":%.2f,\"channel_holds\":%zu,\"broker_connected\":%s}\n",
      tenants->all().size(), clients, found.load(), failed.load(), lookup_seconds, held,
      set.connected() ? "true" : "false");
  std::fflush(stdout);
  std::string line;
  while (std::getline(std::cin, line)) {
  }
  set.stop();
  return failed.load() == 0 ? 0 : 1;
}
