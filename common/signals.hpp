#pragma once
// Blocks SIGINT/SIGTERM in every thread and waits for one on the calling thread.
// Call block_termination_signals() first thing in main, before any thread starts.
namespace sluice {

void block_termination_signals();
// Returns the signal number received.
int wait_for_termination_signal();

}  // namespace sluice
