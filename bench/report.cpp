#include "bench/report.hpp"

#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>
#include <thread>

#include "bench/histogram.hpp"
#include "bench/verifier.hpp"

namespace sluice_bench {

using json = nlohmann::json;

namespace {

double round_to(double v, int digits) {
  const double scale = std::pow(10.0, digits);
  return std::round(v * scale) / scale;
}

json latency_json(const LogHistogram& h) {
  auto ms = [](uint64_t ns) { return round_to(static_cast<double>(ns) / 1e6, 3); };
  return {{"count", h.count()},
          {"p50", ms(h.percentile(0.50))},
          {"p90", ms(h.percentile(0.90))},
          {"p99", ms(h.percentile(0.99))},
          {"p99_9", ms(h.percentile(0.999))},
          {"max", ms(h.max())},
          {"min", ms(h.min())},
          {"mean", round_to(h.mean() / 1e6, 3)}};
}

void add_reasons(std::map<std::string, uint64_t>& into, const json& from) {
  if (!from.is_object()) return;
  for (auto it = from.begin(); it != from.end(); ++it) into[it.key()] += it.value().get<uint64_t>();
}

}  // namespace

double read_loadavg() {
  std::ifstream in("/proc/loadavg");
  double one = -1;
  if (!(in >> one)) return -1;
  return one;
}

json Report::to_json() const {
  const Options& o = *options;
  LogHistogram latency, arrival, connect;
  // The workers' counters that add up, by their keys in each worker's final report.
  std::map<std::string, uint64_t> sums;
  for (const char* key : {"ok", "failed", "dropped", "not_started", "pending", "delivered", "clients_complete",
                          "clients_short", "clients_silent", "clients_over", "clients_with_errors",
                          "missing_never_dropped", "foreign_messages", "clock_steps", "pings", "bytes_in"}) {
    sums[key] = 0;
  }
  uint64_t last_rx = 0;
  uint64_t first_drop = 0, last_drop = 0, longest_gap = 0;
  VerifyCounters verify;
  json verify_samples = json::object();  // counter -> first receipt that raised it
  double client_cpu = 0;
  std::map<std::string, uint64_t> fail_reasons, drop_reasons;
  std::string error_sample;
  for (const json& f : finals) {
    latency.merge(LogHistogram::from_json(f.at("latency")));
    arrival.merge(LogHistogram::from_json(f.at("arrival")));
    connect.merge(LogHistogram::from_json(f.at("connect")));
    for (auto& [key, sum] : sums) sum += f.value(key, uint64_t{0});
    verify.add(VerifyCounters::from_json(f.value("verify", json::object())));
    const json fs = f.value("verify_samples", json::object());
    for (auto it = fs.begin(); it != fs.end(); ++it) {
      if (!verify_samples.contains(it.key())) verify_samples[it.key()] = it.value();
    }
    last_rx = std::max(last_rx, f.value("last_rx_ns", uint64_t{0}));
    if (const uint64_t t = f.value("first_drop_ns", uint64_t{0}); t && (!first_drop || t < first_drop)) first_drop = t;
    last_drop = std::max(last_drop, f.value("last_drop_ns", uint64_t{0}));
    longest_gap = std::max(longest_gap, f.value("longest_gap_ns", uint64_t{0}));
    client_cpu += f.value("cpu_seconds", 0.0);
    add_reasons(fail_reasons, f.value("fail_reasons", json::object()));
    add_reasons(drop_reasons, f.value("drop_reasons", json::object()));
    if (error_sample.empty()) error_sample = f.value("error_sample", "");
  }
  const uint64_t ok = sums.at("ok"), dropped = sums.at("dropped"), not_started = sums.at("not_started");
  const uint64_t pending = sums.at("pending"), delivered = sums.at("delivered");
  // Clients that never got an answer (the run was cut short) count as failed.
  const uint64_t failed = sums.at("failed") + pending;
  if (pending > 0) fail_reasons["no answer before the run ended"] += pending;

  json j;
  j["tool"] = "sluice-bench";
  j["format"] = 1;
  j["run_id"] = run_id;
  j["target"] = o.host + ":" + std::to_string(o.port);
  j["aborted"] = aborted.empty() ? json(nullptr) : json(aborted);

  json streams = json::array();
  std::vector<uint64_t> per_stream(plan->streams.size(), 0);
  for (const auto& c : plan->clients) ++per_stream[c.stream];
  json clients_per_stream = json::object();
  for (size_t i = 0; i < plan->streams.size(); ++i) {
    const auto& s = plan->streams[i];
    streams.push_back(s.weight == 1 ? s.text : s.text + "*" + std::to_string(s.weight));
    clients_per_stream[s.text] = clients_per_stream.value(s.text, uint64_t{0}) + per_stream[i];
  }
  j["clients"] = {{"requested", o.clients},
                  {"sse", plan->sse_clients},
                  {"ws", plan->ws_clients},
                  {"streams", streams},
                  {"per_stream", clients_per_stream},
                  {"tokens", plan->tokens.size()},
                  {"workers", workers},
                  {"connect_rate", o.connect_rate},
                  {"cpu_seconds", round_to(client_cpu, 2)}};

  j["connections"] = {{"ok", ok},
                      {"failed", failed},
                      {"not_attempted", not_started},
                      {"dropped", dropped},
                      {"fail_reasons", fail_reasons},
                      {"drop_reasons", drop_reasons},
                      // How the server's cuts spread: first to last, in ms (0 when none).
                      {"drops_spread_ms", last_drop > first_drop ? round_to((last_drop - first_drop) / 1e6, 1) : 0.0},
                      {"connect_seconds", round_to(connect_seconds, 3)},
                      {"connections_per_second", connect_seconds > 0 ? round_to(ok / connect_seconds, 1) : 0.0}};
  j["connect_latency_ms"] = latency_json(connect);

  json outages = json::array();
  for (const auto& outage : redis_outages) {
    auto ms = [](uint64_t ns) { return ns ? json(ns / 1'000'000) : json(nullptr); };
    outages.push_back({{"lost_ms", ms(outage.lost_realtime_ns)},
                       {"answered_ms", ms(outage.answered_realtime_ns)},
                       {"resumed_ms", ms(outage.resumed_realtime_ns)}});
  }
  j["events"] = {{"requested", o.events},
                 {"published", published_events},
                 {"rate", o.rate},
                 {"achieved_rate", publish_seconds > 0 && published_events > 1
                                       ? round_to((published_events - 1) / publish_seconds, 2)
                                       : 0.0},
                 {"channels", plan->channels.size()},
                 {"channels_subscribed", subscribed_channels},
                 {"channels_not_subscribed", unsubscribed_examples},
                 {"channel_mode", o.round_robin_channels ? "round-robin" : "all"},
                 {"publishes", publishes},
                 {"publishes_without_subscriber", publishes_without_subscriber},
                 {"publishes_unknown", publishes_unknown},
                 {"publishes_unsent", publishes_unsent},
                 {"redis_outages", outages},
                 {"outages_unresolved", outages_unresolved(redis_outages)},
                 {"message_bytes", message_bytes}};

  // Per-event verification (bench/verifier.hpp): the workers' counters, summed.
  const uint64_t received = verify.expected - verify.missing;
  j["delivery"] = {{"delivered", verify.delivered},
                   {"expected", verify.expected},
                   {"missing", verify.missing},
                   {"missing_never_dropped", sums.at("missing_never_dropped")},
                   {"duplicated", verify.duplicated},
                   {"reordered", verify.reordered},
                   {"wrong_event", verify.wrong_event},
                   {"wrong_payload", verify.wrong_payload},
                   {"wrong_filtered", verify.wrong_filtered},
                   {"wrong_stream", verify.wrong_stream},
                   {"unexpected", verify.unexpected},
                   // A run has its channels to itself: a message without its marker (an
                   // error frame, a copy whose marker was mangled) is something extra.
                   {"verified", verify.clean() && sums.at("foreign_messages") == 0 &&
                                    (published_events == 0 || verify.expected > 0) &&
                                    outages_unresolved(redis_outages) == 0},
                   {"event_mix", o.event_mix},
                   {"verify_samples", verify_samples},
                   {"lost", verify.missing},
                   {"ratio", verify.expected ? round_to(static_cast<double>(received) / verify.expected, 6) : 0.0},
                   {"clients_complete", sums.at("clients_complete")},
                   {"clients_short", sums.at("clients_short")},
                   {"clients_silent", sums.at("clients_silent")},
                   {"clients_over", sums.at("clients_over")},
                   {"clients_with_errors", sums.at("clients_with_errors")},
                   {"foreign_messages", sums.at("foreign_messages")},
                   {"error_sample", error_sample},
                   {"ws_pings_answered", sums.at("pings")},
                   {"bytes_received", sums.at("bytes_in")}};
  j["latency_ms"] = latency_json(latency);
  // Receipts timed before their send: the wall clock stepped back during the run, and the
  // latency figures leave those receipts out.
  j["latency_clock_steps"] = sums.at("clock_steps");
  j["arrival_latency_ms"] = latency_json(arrival);
  // The longest any connected client waited between two consecutive events of the run
  // (the publishing interval included): how long the flow stopped for someone.
  j["longest_gap_ms"] = round_to(static_cast<double>(longest_gap) / 1e6, 1);
  const double window = last_rx > first_publish_realtime_ns && delivered > 0
                            ? static_cast<double>(last_rx - first_publish_realtime_ns) / 1e9
                            : 0.0;
  j["throughput"] = {{"delivered_per_second", window > 0 ? round_to(delivered / window, 1) : 0.0},
                     {"window_seconds", round_to(window, 3)}};

  if (o.server_pids.empty()) {
    j["server"] = nullptr;
  } else {
    const double rss_delta = static_cast<double>(proc_after_connect.rss_bytes) - static_cast<double>(proc_before_connect.rss_bytes);
    const double cpu_connect = proc_after_connect_cpu.cpu_seconds - proc_before_connect.cpu_seconds;
    const double cpu_publish = proc_after_run.cpu_seconds - proc_before_publish.cpu_seconds;
    j["server"] = {
        {"pids", o.server_pids},
        {"pids_missing_at_end", proc_after_run.missing},
        {"rss_before_connect_bytes", proc_before_connect.rss_bytes},
        {"rss_after_connect_bytes", proc_after_connect.rss_bytes},
        {"rss_after_run_bytes", proc_after_run.rss_bytes},
        {"rss_bytes_per_connection", ok ? round_to(rss_delta / ok, 1) : 0.0},
        {"cpu_seconds_connect", round_to(cpu_connect, 2)},
        {"cpu_ms_per_connection", ok ? round_to(cpu_connect * 1000.0 / ok, 4) : 0.0},
        {"cpu_seconds_publish", round_to(cpu_publish, 2)},
        {"cpu_seconds_per_million_deliveries", delivered ? round_to(cpu_publish / delivered * 1e6, 3) : 0.0},
    };
    // A process that exited takes its counters with it: differences would be meaningless.
    if (proc_after_connect.missing > proc_before_connect.missing ||
        proc_after_connect_cpu.missing > proc_before_connect.missing) {
      j["server"]["rss_bytes_per_connection"] = nullptr;
      j["server"]["cpu_seconds_connect"] = nullptr;
      j["server"]["cpu_ms_per_connection"] = nullptr;
    }
    if (proc_after_run.missing > proc_before_publish.missing) {
      j["server"]["cpu_seconds_publish"] = nullptr;
      j["server"]["cpu_seconds_per_million_deliveries"] = nullptr;
    }
  }
  j["host"] = {{"cpus", std::thread::hardware_concurrency()},
               {"loadavg_1m_start", round_to(loadavg_start, 2)},
               {"loadavg_1m_end", round_to(loadavg_end, 2)}};
  j["phases_seconds"] = {{"connect", round_to(connect_seconds, 3)}, {"settle", round_to(settle_seconds, 3)},
                         {"subscribe", round_to(subscribe_seconds, 3)}, {"publish", round_to(publish_seconds, 3)},
                         {"drain", round_to(drain_seconds, 3)}, {"linger", round_to(linger_seconds, 3)},
                         {"total", round_to(total_seconds, 3)}};
  j["ok"] = aborted.empty() && failed == 0 && dropped == 0 && not_started == 0 && workers_lost == 0;
  return j;
}

namespace {

std::string ms_text(double ms) {
  char buf[32];
  if (ms < 10) {
    std::snprintf(buf, sizeof buf, "%.2f ms", ms);
  } else if (ms < 1000) {
    std::snprintf(buf, sizeof buf, "%.1f ms", ms);
  } else {
    std::snprintf(buf, sizeof buf, "%.2f s", ms / 1000);
  }
  return buf;
}

std::string bytes_text(double b) {
  char buf[32];
  const double a = std::fabs(b);
  if (a >= 1024.0 * 1024 * 1024) {
    std::snprintf(buf, sizeof buf, "%.2f GiB", b / (1024.0 * 1024 * 1024));
  } else if (a >= 1024.0 * 1024) {
    std::snprintf(buf, sizeof buf, "%.1f MiB", b / (1024.0 * 1024));
  } else if (a >= 1024.0) {
    std::snprintf(buf, sizeof buf, "%.2f KiB", b / 1024.0);
  } else {
    std::snprintf(buf, sizeof buf, "%.0f B", b);
  }
  return buf;
}

std::string percentiles(const json& l) {
  return "p50 " + ms_text(l["p50"]) + "  p90 " + ms_text(l["p90"]) + "  p99 " + ms_text(l["p99"]) + "  p99.9 " +
         ms_text(l["p99_9"]) + "  max " + ms_text(l["max"]);
}

std::string reasons(const json& r) {
  std::string out;
  for (auto it = r.begin(); it != r.end(); ++it) {
    out += out.empty() ? "" : "; ";
    out += it.key() + " x" + std::to_string(it.value().get<uint64_t>());
  }
  return out;
}

}  // namespace

void print_table(const json& j) {
  const json& c = j["clients"];
  const json& conn = j["connections"];
  const json& ev = j["events"];
  const json& d = j["delivery"];
  std::string streams;
  for (const auto& s : c["streams"]) {
    if (!streams.empty()) streams += ',';
    streams += s.get<std::string>();
  }

  std::printf("sluice-bench %s  target %s%s\n", j["run_id"].get<std::string>().c_str(),
              j["target"].get<std::string>().c_str(),
              j["aborted"].is_null() ? "" : ("  ABORTED: " + j["aborted"].get<std::string>()).c_str());
  std::printf("  %-18s %" PRIu64 " (%" PRIu64 " SSE, %" PRIu64 " WS) on %s, %" PRIu64 " token(s), %" PRIu64 " worker(s)\n",
              "clients", c["requested"].get<uint64_t>(), c["sse"].get<uint64_t>(), c["ws"].get<uint64_t>(),
              streams.c_str(), c["tokens"].get<uint64_t>(), c["workers"].get<uint64_t>());
  std::printf("  %-18s %" PRIu64 " ok, %" PRIu64 " failed, %" PRIu64 " dropped during the run", "connections",
              conn["ok"].get<uint64_t>(), conn["failed"].get<uint64_t>(), conn["dropped"].get<uint64_t>());
  if (conn["not_attempted"].get<uint64_t>() > 0) std::printf(", %" PRIu64 " not attempted", conn["not_attempted"].get<uint64_t>());
  std::printf("\n");
  if (!conn["fail_reasons"].empty()) std::printf("  %-18s %s\n", "  failures", reasons(conn["fail_reasons"]).c_str());
  if (!conn["drop_reasons"].empty()) std::printf("  %-18s %s\n", "  drops", reasons(conn["drop_reasons"]).c_str());
  std::printf("  %-18s %s   (%.0f conn/s over %.2f s)\n", "connect latency", percentiles(j["connect_latency_ms"]).c_str(),
              conn["connections_per_second"].get<double>(), conn["connect_seconds"].get<double>());
  std::printf("  %-18s %" PRIu64 "/%" PRIu64 " at %.1f/s (asked %.1f/s) on %" PRIu64 " channel(s), %" PRIu64 " B each\n",
              "events", ev["published"].get<uint64_t>(), ev["requested"].get<uint64_t>(), ev["achieved_rate"].get<double>(),
              ev["rate"].get<double>(), ev["channels"].get<uint64_t>(), ev["message_bytes"].get<uint64_t>());
  if (!ev["channels_not_subscribed"].empty()) {
    std::printf("  %-18s %s\n", "  NOT subscribed", ev["channels_not_subscribed"].dump().c_str());
  }
  std::printf("  %-18s %" PRIu64 " / %" PRIu64 " expected (%.3f%% received once or more); clients complete %" PRIu64
              ", short %" PRIu64 " (%" PRIu64 " got nothing), with errors %" PRIu64 "\n",
              "delivered", d["delivered"].get<uint64_t>(), d["expected"].get<uint64_t>(), d["ratio"].get<double>() * 100,
              d["clients_complete"].get<uint64_t>(), d["clients_short"].get<uint64_t>(), d["clients_silent"].get<uint64_t>(),
              d["clients_with_errors"].get<uint64_t>());
  auto n = [&d](const char* key) { return d[key].get<uint64_t>(); };
  std::printf("  %-18s %s: missing %" PRIu64 ", duplicated %" PRIu64 ", reordered %" PRIu64 ", wrong_event %" PRIu64
              ", wrong_payload %" PRIu64 " (filtered %" PRIu64 "), wrong_stream %" PRIu64 ", unexpected %" PRIu64 "\n",
              "per-event check", d["verified"].get<bool>() ? "OK" : "FAILED", n("missing"), n("duplicated"), n("reordered"),
              n("wrong_event"), n("wrong_payload"), n("wrong_filtered"), n("wrong_stream"), n("unexpected"));
  for (auto it = d["verify_samples"].begin(); it != d["verify_samples"].end(); ++it) {
    std::printf("  %-18s %s: %s\n", "  first", it.key().c_str(), it.value().get<std::string>().c_str());
  }
  if (!d["error_sample"].get<std::string>().empty()) {
    std::printf("  %-18s %s\n", "  server said", d["error_sample"].get<std::string>().c_str());
  }
  std::printf("  %-18s %s\n", "latency", percentiles(j["latency_ms"]).c_str());
  std::printf("  %-18s %s   (publish to the kernel's receive time)\n", "arrival latency",
              percentiles(j["arrival_latency_ms"]).c_str());
  std::printf("  %-18s %.0f deliveries/s (first publish to last receive, %.2f s)\n", "throughput",
              j["throughput"]["delivered_per_second"].get<double>(), j["throughput"]["window_seconds"].get<double>());
  std::printf("  %-18s %.2f s CPU in %" PRIu64 " client worker(s) over %.1f s; host load %.2f -> %.2f on %" PRIu64 " CPUs\n",
              "bench host", c["cpu_seconds"].get<double>(), c["workers"].get<uint64_t>(),
              j["phases_seconds"]["total"].get<double>(), j["host"]["loadavg_1m_start"].get<double>(),
              j["host"]["loadavg_1m_end"].get<double>(), j["host"]["cpus"].get<uint64_t>());
  if (!j["server"].is_null() && j["server"]["pids_missing_at_end"].get<uint64_t>() > 0) {
    std::printf("  %-18s %" PRIu64 " server process(es) EXITED during the run; figures that need them are n/a\n",
                "server", j["server"]["pids_missing_at_end"].get<uint64_t>());
  }
  if (!j["server"].is_null()) {
    const json& s = j["server"];
    auto num = [&s](const char* key) { return s[key].is_null() ? std::nan("") : s[key].get<double>(); };
    std::printf("  %-18s %s before, %s after connecting: %s per connection\n", "server RSS",
                bytes_text(s["rss_before_connect_bytes"].get<double>()).c_str(),
                bytes_text(s["rss_after_connect_bytes"].get<double>()).c_str(),
                s["rss_bytes_per_connection"].is_null() ? "n/a" : bytes_text(num("rss_bytes_per_connection")).c_str());
    auto fixed = [](double v, int digits) {
      if (std::isnan(v)) return std::string("n/a");
      char buf[32];
      std::snprintf(buf, sizeof buf, "%.*f", digits, v);
      return std::string(buf);
    };
    std::printf("  %-18s %s s while publishing: %s s per million deliveries; %s ms per connection\n", "server CPU",
                fixed(num("cpu_seconds_publish"), 2).c_str(), fixed(num("cpu_seconds_per_million_deliveries"), 2).c_str(),
                fixed(num("cpu_ms_per_connection"), 3).c_str());
  }
  std::fflush(stdout);
}

}  // namespace sluice_bench
