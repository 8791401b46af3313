#pragma once
// grpc.health.v1.Health/Check by hand, for tests of the tiers' health service (the
// project does not generate health.proto's stubs): request {service}, reply {status}.
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>

#include <chrono>
#include <future>
#include <memory>
#include <string>
#include <vector>

namespace sluice::testing {

// The call itself; the reply's bytes into `reply`.
inline grpc::Status health_check(const std::shared_ptr<grpc::Channel>& channel, const std::string& service,
                                 std::string* reply = nullptr) {
  std::string request;
  request.push_back(0x0A);  // field 1, length-delimited
  for (size_t length = service.size();; length >>= 7) {  // the length as a varint
    request.push_back(static_cast<char>((length & 0x7F) | (length > 0x7F ? 0x80 : 0)));
    if (length <= 0x7F) break;
  }
  request += service;
  grpc::Slice slice(request);
  grpc::ByteBuffer request_buffer(&slice, 1), response_buffer;
  grpc::GenericStub stub(channel);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  std::promise<grpc::Status> done;
  stub.UnaryCall(&context, "/grpc.health.v1.Health/Check", grpc::StubOptions(), &request_buffer, &response_buffer,
                 [&](grpc::Status status) { done.set_value(status); });
  grpc::Status status = done.get_future().get();
  if (status.ok() && reply) {
    std::vector<grpc::Slice> slices;
    response_buffer.Dump(&slices);
    reply->clear();
    for (const auto& s : slices) reply->append(reinterpret_cast<const char*>(s.begin()), s.size());
  }
  return status;
}

// 1 = SERVING, 2 = NOT_SERVING, 0 = UNKNOWN; -1 when the call fails (NOT_FOUND for a
// service the server has no status for), -2 for a reply that does not parse.
inline int health_status(const std::shared_ptr<grpc::Channel>& channel, const std::string& service) {
  std::string bytes;
  if (!health_check(channel, service, &bytes).ok()) return -1;
  if (bytes.empty()) return 0;  // UNKNOWN is the default value: not written
  return bytes.size() >= 2 && bytes[0] == 0x08 ? bytes[1] : -2;
}

}  // namespace sluice::testing
