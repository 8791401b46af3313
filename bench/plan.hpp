// sluice-bench: what each client does (transport, stream, token) and which
// Redis channel feeds it. Built once in the coordinator before the workers are
// forked, so every process shares the same plan.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "bench/options.hpp"

namespace sluice_bench {

struct StreamSpec {
  std::string text;     // as given on the command line, without a weight, e.g. "hashtag:local:cafe"
  std::string name;     // stream name (docs/protocol.md#stream-table), e.g. "hashtag:local"
  std::string param;    // tag or list id, if the stream needs one (empty for "list:own")
  bool needs_account;   // channel contains the token's account id
  bool own_list = false;  // "list:own": the token's account's list, whose id is the account id
  uint32_t weight = 1;  // "NAME*W": W shares of the clients
};

// "user", "hashtag:cafe*12", "list:own*3", ... Throws UsageError.
StreamSpec parse_stream(const std::string& text);

struct ClientSpec {
  uint32_t stream;   // index into Plan::streams
  uint32_t token;    // index into Plan::tokens
  uint32_t channel;  // index into Plan::channels
  bool sse;
};

struct Plan {
  std::vector<StreamSpec> streams;
  std::vector<TokenEntry> tokens;
  std::vector<std::string> channels;             // without namespace
  std::vector<uint32_t> clients_per_channel;     // planned listeners of each channel
  std::vector<bool> remote_channel;              // events need a remote author (public:remote*)
  std::vector<ClientSpec> clients;
  uint32_t sse_clients = 0;
  uint32_t ws_clients = 0;

  std::map<std::string, uint32_t> channel_index;  // channel name -> index into channels

  // Every plan channel client i hears: its own channel, plus, for a `user` client,
  // `timeline:<id>:notifications` when some client of the plan makes us publish there
  // (the server adds it to `user` for tokens with `read` or `read:notifications`;
  // the bench assumes its tokens have `read`). Published events on any other channel
  // must not reach the client.
  std::vector<uint32_t> heard_channels(uint32_t client) const;
  // The WebSocket `stream` field the server must send for client i's events
  // (docs/protocol.md#websocket-stream-echo): ["user"], ["hashtag","cafe"], ...
  std::vector<std::string> stream_echo(uint32_t client) const;
  // Whether client i's stream is filtered (public*, hashtag*): statuses then carry
  // `"filtered":[...]` as their last key (docs/protocol.md#filter-evaluation).
  bool filtered(uint32_t client) const;

  // The tag or list id of client i's stream ("list:own" resolves to its account's list).
  std::string stream_param(uint32_t client) const;
  // HTTP request that opens client i's stream ("Host" is the target's host:port).
  std::string request_for(uint32_t client, const std::string& host_header, const std::string& ws_key) const;
};

Plan build_plan(const Options& options);  // throws UsageError

}  // namespace sluice_bench
