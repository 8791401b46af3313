#include "common/grpc_auth.hpp"

#include <openssl/crypto.h>

namespace sluice {

bool internal_token_ok(const grpc::ServerContextBase& context, const std::string& expected) {
  if (expected.empty()) return true;
  const auto& metadata = context.client_metadata();
  auto it = metadata.find(kInternalTokenHeader);
  if (it == metadata.end() || it->second.size() != expected.size()) return false;
  return CRYPTO_memcmp(it->second.data(), expected.data(), expected.size()) == 0;
}

void attach_internal_token(grpc::ClientContext& context, const std::string& token) {
  if (!token.empty()) context.AddMetadata(kInternalTokenHeader, token);
}

}  // namespace sluice
