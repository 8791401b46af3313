#include "bench/options.hpp"

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "bench/util.hpp"

namespace sluice_bench {

void print_usage(const char* argv0) {
  std::printf(
      "Usage: %s [options]\n"
      "\n"
      "Load tool for Sluice / Mastodon streaming servers: holds N listening clients\n"
      "(SSE and/or WebSocket), publishes M events to Redis at a set rate and measures\n"
      "publish-to-receive latency, losses, connect latency and server cost.\n"
      "\n"
      "Target\n"
      "  --host HOST              server address (default 127.0.0.1)\n"
      "  --port PORT              server port (default 4000)\n"
      "  --allow-remote           allow a non-loopback target (refused otherwise)\n"
      "\n"
      "Clients\n"
      "  --clients N              listening clients (default 100, at most 1000000)\n"
      "  --transport sse|ws|mixed SSE only, WebSocket only, or half and half (default sse)\n"
      "  --sse-share X            fraction 0..1 of clients using SSE (overrides --transport)\n"
      "  --stream LIST            comma list of streams, taken round-robin (default user):\n"
      "                           user, user:notification, public, public:media, public:local,\n"
      "                           public:local:media, public:remote, public:remote:media,\n"
      "                           hashtag:TAG, hashtag:local:TAG, list:ID, list:own (the token's\n"
      "                           account's list, id = account id), direct. NAME*W gives a stream\n"
      "                           W shares: with any weight, client i takes token i mod T and a\n"
      "                           stream drawn by weight (skewed popularity), not round-robin\n"
      "  --token TOKEN            access token (repeatable; env SLUICE_BENCH_TOKEN also works)\n"
      "  --account-id ID          account id of --token(s), for user/direct channels\n"
      "  --tokens-file FILE       one 'token [account_id]' per line ('#' comments)\n"
      "  --connect-rate R         new connections per second, all workers (default 1000)\n"
      "  --connect-timeout-ms T   per connection, connect to response headers (default 10000)\n"
      "  --workers W              client processes (default: one per 15000 clients)\n"
      "  --source-pool K          loopback source addresses 127.0.0.2.. to spread over (default 256)\n"
      "  --no-source-spread       do not bind client sockets to spread source addresses\n"
      "\n"
      "Events\n"
      "  --events M               events to publish (default 100)\n"
      "  --rate R                 events per second (default 10)\n"
      "  --payload-bytes B        target size of each Redis message, padded with text (default 2000;\n"
      "                           the bare status is about 2 KB, so smaller values give that)\n"
      "  --channel-mode all|round-robin  every event on every channel (default), or\n"
      "                           event k on channel k mod C only\n"
      "  --event-mix LIST         comma list of update, status.update, delete (default update);\n"
      "                           the s-th event published on a channel is LIST[s mod size]\n"
      "  --redis-url URL          redis://[user:password@]host[:port][/db]\n"
      "  --redis-host HOST        (default 127.0.0.1)\n"
      "  --redis-port PORT        (default 6379)\n"
      "  --redis-namespace NS     REDIS_NAMESPACE of the server (channels become NS:channel)\n"
      "  --redis-outages          keep publishing when Redis goes away: reconnect, and do not\n"
      "                           require events Redis may never have had (sent while it was\n"
      "                           down, in flight when it went, or without a subscriber)\n"
      "\n"
      "Timing (all phases are bounded)\n"
      "  --settle-ms T            wait after the last connection before publishing (default 1000)\n"
      "  --subscribe-timeout-ms T wait for PUBSUB NUMSUB to show the server subscribed (default 10000)\n"
      "  --drain-ms T             wait for stragglers after the last event (default 5000)\n"
      "  --linger-ms T            then keep reading this long, so that a duplicate or a stray\n"
      "                           event arriving after the last expected one is counted\n"
      "                           (default 1000)\n"
      "  --max-seconds S          hard bound on the whole run (default 600)\n"
      "\n"
      "Reporting\n"
      "  --server-pid PID         server process to measure RSS and CPU of (repeatable)\n"
      "  --json-only              print only the SLUICE_BENCH_RESULT line (no table, no progress)\n"
      "  --no-progress            no progress line on stderr\n"
      "  --fail-on-mismatch       exit 4 when any event was missing, duplicated, reordered,\n"
      "                           unexpected or wrong (event name, payload, filtered, stream)\n"
      "  --self-test              check that the verifier counts injected faults (no server\n"
      "                           or Redis needed), print the result and exit 0 or 1\n"
      "  -h, --help               this text\n"
      "\n"
      "Output: a table and one line 'SLUICE_BENCH_RESULT {json}' on stdout.\n"
      "Exit status: 0 all connections succeeded and stayed up; 1 some failed, dropped, or the\n"
      "run was cut short; 2 usage error; 3 setup error (Redis, server pid, ...); 4 (with\n"
      "--fail-on-mismatch, when 0 otherwise) the per-event verification found a problem.\n",
      argv0);
}

namespace {

double parse_double(const std::string& name, const std::string& value, double lo, double hi) {
  char* end = nullptr;
  double v = std::strtod(value.c_str(), &end);
  if (value.empty() || *end != '\0' || !std::isfinite(v) || v < lo || v > hi) {
    std::ostringstream msg;
    msg << name << ": expected a number in [" << lo << ", " << hi << "], got '" << value << "'";
    throw UsageError(msg.str());
  }
  return v;
}

uint64_t parse_uint(const std::string& name, const std::string& value, uint64_t lo, uint64_t hi) {
  char* end = nullptr;
  errno = 0;
  unsigned long long v = std::strtoull(value.c_str(), &end, 10);
  if (value.empty() || value[0] == '-' || *end != '\0' || errno != 0 || v < lo || v > hi) {
    throw UsageError(name + ": expected an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) +
                     "], got '" + value + "'");
  }
  return v;
}

std::vector<std::string> split_commas(const std::string& value) {
  std::vector<std::string> out;
  std::string item;
  std::istringstream in(value);
  while (std::getline(in, item, ',')) {
    std::string_view t = trim(item);
    if (!t.empty()) out.emplace_back(t);
  }
  return out;
}

void read_tokens_file(const std::string& path, std::vector<TokenEntry>& out) {
  std::ifstream in(path);
  if (!in) throw UsageError("--tokens-file: cannot open '" + path + "'");
  std::string line;
  while (std::getline(in, line)) {
    std::string_view t = trim(line);
    if (t.empty() || t.front() == '#') continue;
    std::istringstream fields{std::string(t)};
    TokenEntry entry;
    fields >> entry.token >> entry.account_id;
    out.push_back(std::move(entry));
  }
  if (out.empty()) throw UsageError("--tokens-file: no tokens in '" + path + "'");
}

// redis://[user:password@]host[:port][/db]
void parse_redis_url(const std::string& url, Options& o) {
  std::string rest;
  if (url.rfind("redis://", 0) == 0) {
    rest = url.substr(8);
  } else {
    throw UsageError("--redis-url: only redis:// URLs are supported, got '" + url + "'");
  }
  if (auto slash = rest.find('/'); slash != std::string::npos) rest.resize(slash);  // db is irrelevant to pub/sub
  if (auto at = rest.rfind('@'); at != std::string::npos) {
    std::string creds = rest.substr(0, at);
    rest = rest.substr(at + 1);
    if (auto colon = creds.find(':'); colon != std::string::npos) {
      o.redis_user = creds.substr(0, colon);
      o.redis_password = creds.substr(colon + 1);
    } else {
      o.redis_password = creds;
    }
  }
  if (!rest.empty() && rest.front() == '[') {
    auto close = rest.find(']');
    if (close == std::string::npos) throw UsageError("--redis-url: bad IPv6 address in '" + url + "'");
    o.redis_host = rest.substr(1, close - 1);
    rest = rest.substr(close + 1);
    if (!rest.empty() && rest.front() == ':') o.redis_port = static_cast<int>(parse_uint("--redis-url port", rest.substr(1), 1, 65535));
  } else if (auto colon = rest.rfind(':'); colon != std::string::npos) {
    o.redis_host = rest.substr(0, colon);
    o.redis_port = static_cast<int>(parse_uint("--redis-url port", rest.substr(colon + 1), 1, 65535));
  } else if (!rest.empty()) {
    o.redis_host = rest;
  }
}

}  // namespace

Options parse_options(int argc, char** argv) {
  Options o;
  std::vector<std::string> tokens;
  std::string account_id;
  std::string tokens_file;
  bool share_given = false;
  std::string transport;

  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    std::string value;
    bool has_inline = false;
    if (arg.rfind("--", 0) == 0) {
      if (auto eq = arg.find('='); eq != std::string::npos) {
        value = arg.substr(eq + 1);
        arg.resize(eq);
        has_inline = true;
      }
    }
    auto next = [&]() -> std::string {
      if (has_inline) return value;
      if (i + 1 >= argc) throw UsageError(arg + ": missing value");
      return argv[++i];
    };
    auto no_value = [&] {
      if (has_inline) throw UsageError(arg + " takes no value");
    };

    if (arg == "-h" || arg == "--help") {
      print_usage(argv[0]);
      std::exit(0);
    } else if (arg == "--host") {
      o.host = next();
    } else if (arg == "--port") {
      o.port = static_cast<int>(parse_uint(arg, next(), 1, 65535));
    } else if (arg == "--allow-remote") {
      no_value();
      o.allow_remote = true;
    } else if (arg == "--clients") {
      o.clients = static_cast<uint32_t>(parse_uint(arg, next(), 1, 1000000));
    } else if (arg == "--transport") {
      transport = next();
      if (transport != "sse" && transport != "ws" && transport != "mixed") {
        throw UsageError("--transport: expected sse, ws or mixed, got '" + transport + "'");
      }
    } else if (arg == "--sse-share") {
      o.sse_share = parse_double(arg, next(), 0.0, 1.0);
      share_given = true;
    } else if (arg == "--stream") {
      o.streams = split_commas(next());
      if (o.streams.empty()) throw UsageError("--stream: empty list");
    } else if (arg == "--token") {
      tokens.push_back(next());
    } else if (arg == "--account-id") {
      account_id = next();
      parse_uint(arg, account_id, 0, UINT64_MAX);
    } else if (arg == "--tokens-file") {
      tokens_file = next();
    } else if (arg == "--connect-rate") {
      o.connect_rate = parse_double(arg, next(), 0.1, 1e7);
    } else if (arg == "--connect-timeout-ms") {
      o.connect_timeout_ms = static_cast<uint32_t>(parse_uint(arg, next(), 1, 3600000));
    } else if (arg == "--workers") {
      o.workers = static_cast<uint32_t>(parse_uint(arg, next(), 1, 1024));
    } else if (arg == "--source-pool") {
      o.source_pool = static_cast<uint32_t>(parse_uint(arg, next(), 1, 0xFFFFFD));
    } else if (arg == "--no-source-spread") {
      no_value();
      o.spread_sources = false;
    } else if (arg == "--events") {
      o.events = static_cast<uint32_t>(parse_uint(arg, next(), 0, 100000000));
    } else if (arg == "--rate") {
      o.rate = parse_double(arg, next(), 0.001, 1e6);
    } else if (arg == "--payload-bytes") {
      o.payload_bytes = static_cast<uint32_t>(parse_uint(arg, next(), 600, 1 << 20));
    } else if (arg == "--channel-mode") {
      std::string mode = next();
      if (mode == "all") {
        o.round_robin_channels = false;
      } else if (mode == "round-robin") {
        o.round_robin_channels = true;
      } else {
        throw UsageError("--channel-mode: expected all or round-robin, got '" + mode + "'");
      }
    } else if (arg == "--event-mix") {
      o.event_mix = split_commas(next());
      if (o.event_mix.empty()) throw UsageError("--event-mix: empty list");
      for (const auto& name : o.event_mix) {
        if (name != "update" && name != "status.update" && name != "delete") {
          throw UsageError("--event-mix: expected update, status.update or delete, got '" + name + "'");
        }
      }
    } else if (arg == "--redis-url") {
      parse_redis_url(next(), o);
    } else if (arg == "--redis-host") {
      o.redis_host = next();
    } else if (arg == "--redis-port") {
      o.redis_port = static_cast<int>(parse_uint(arg, next(), 1, 65535));
    } else if (arg == "--redis-namespace") {
      o.redis_namespace = next();
    } else if (arg == "--settle-ms") {
      o.settle_ms = static_cast<uint32_t>(parse_uint(arg, next(), 0, 3600000));
    } else if (arg == "--subscribe-timeout-ms") {
      o.subscribe_timeout_ms = static_cast<uint32_t>(parse_uint(arg, next(), 0, 3600000));
    } else if (arg == "--drain-ms") {
      o.drain_ms = static_cast<uint32_t>(parse_uint(arg, next(), 0, 3600000));
    } else if (arg == "--linger-ms") {
      o.linger_ms = static_cast<uint32_t>(parse_uint(arg, next(), 0, 3600000));
    } else if (arg == "--max-seconds") {
      o.max_seconds = parse_double(arg, next(), 1.0, 86400.0);
    } else if (arg == "--server-pid") {
      o.server_pids.push_back(static_cast<pid_t>(parse_uint(arg, next(), 1, 0x7FFFFFFF)));
    } else if (arg == "--json-only") {
      no_value();
      o.json_only = true;
      o.progress = false;
    } else if (arg == "--no-progress") {
      no_value();
      o.progress = false;
    } else if (arg == "--redis-outages") {
      no_value();
      o.redis_outages = true;
    } else if (arg == "--fail-on-mismatch") {
      no_value();
      o.fail_on_mismatch = true;
    } else if (arg == "--self-test") {
      no_value();
      o.self_test = true;
    } else {
      throw UsageError("unknown option '" + arg + "' (see --help)");
    }
  }

  if (!share_given && !transport.empty()) {
    o.sse_share = transport == "sse" ? 1.0 : transport == "ws" ? 0.0 : 0.5;
  }
  if (o.self_test) return o;
  if (tokens.empty() && tokens_file.empty()) {
    if (const char* env = std::getenv("SLUICE_BENCH_TOKEN"); env && *env) tokens.emplace_back(env);
  }
  for (auto& t : tokens) o.tokens.push_back({t, account_id});
  if (!tokens_file.empty()) read_tokens_file(tokens_file, o.tokens);
  if (o.tokens.empty()) throw UsageError("no access token: give --token, --tokens-file or SLUICE_BENCH_TOKEN");
  for (auto& t : o.tokens) {
    if (t.token.empty() || t.token.find_first_of(" \t\r\n") != std::string::npos) {
      throw UsageError("an access token is empty or contains white space");
    }
  }
  return o;
}

}  // namespace sluice_bench
