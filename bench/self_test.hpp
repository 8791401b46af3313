// sluice-bench --self-test: proves that the per-event verifier (bench/verifier.hpp)
// can fail. It renders what a correct server would send for the publisher's own
// messages (parsed and re-serialised, "filtered":[] on filtered streams, the
// WebSocket envelope with its stream echo), checks that a clean delivery counts
// nothing, then injects a dropped, a duplicated, a reordered, a corrupted event
// and the other faults, one scenario at a time, and checks each counter's value.
// No server, Redis or network is involved. Exit status 0 when every scenario
// counted exactly what it should, 1 otherwise.
#pragma once

namespace sluice_bench {

int run_self_test();

}  // namespace sluice_bench
