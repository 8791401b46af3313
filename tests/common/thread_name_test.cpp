#include "common/thread_name.hpp"

#include <gtest/gtest.h>
#include <pthread.h>

#include <string>
#include <thread>

namespace sluice {
namespace {

std::string name_seen_from_inside(const std::string& asked) {
  std::string seen;
  std::thread([&] {
    name_this_thread(asked);
    char buffer[64] = {};
    pthread_getname_np(pthread_self(), buffer, sizeof buffer);
    seen = buffer;
  }).join();
  return seen;
}

TEST(ThreadName, TheThreadTakesTheName) { EXPECT_EQ(name_seen_from_inside("gw-worker-12"), "gw-worker-12"); }

// Linux refuses names of 16 bytes or more outright; cut, the thread still gets one.
TEST(ThreadName, ALongNameIsCutToFifteenBytes) {
  EXPECT_EQ(name_seen_from_inside("auth-db-connection-pool-7"), "auth-db-connect");
}

}  // namespace
}  // namespace sluice
