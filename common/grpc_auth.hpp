#pragma once
// Optional shared secret between tiers (SLUICE_INTERNAL_TOKEN): the gateway sends it
// as metadata `x-sluice-internal-token`; broker and auth refuse calls without it.
#include <grpcpp/grpcpp.h>

#include <string>

namespace sluice {

inline constexpr const char* kInternalTokenHeader = "x-sluice-internal-token";

// True when `expected` is empty (no secret configured) or the call carries it.
bool internal_token_ok(const grpc::ServerContextBase& context, const std::string& expected);
// Adds the secret to an outgoing call when one is configured.
void attach_internal_token(grpc::ClientContext& context, const std::string& token);

}  // namespace sluice
