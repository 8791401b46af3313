#include "common/tenants.hpp"

#include <nlohmann/json.hpp>
#include <set>

#include "common/config_error.hpp"

namespace sluice {

namespace {

using json = nlohmann::json;

bool valid_tenant_name(std::string_view name) {
  if (name.empty() || name.size() > 63) return false;
  for (char c : name) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_')) return false;
  }
  return true;
}

bool valid_variable_name(std::string_view name) {
  if (name.empty() || (name[0] >= '0' && name[0] <= '9')) return false;
  for (char c : name) {
    if (!((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_')) return false;
  }
  return true;
}

[[noreturn]] void invalid(const std::string& where, const std::string& what) {
  throw ConfigError("Invalid tenants file: " + where + ": " + what);
}

}  // namespace

std::string normalized_host(std::string_view host) {
  std::string_view name = host;
  if (name.starts_with('[')) {  // [v6]:port or [v6]
    const size_t close = name.find(']');
    if (close == std::string_view::npos) return {};
    name = name.substr(0, close + 1);
  } else if (const size_t colon = name.find(':'); colon != std::string_view::npos) {
    name = name.substr(0, colon);
  }
  if (name.ends_with('.')) name.remove_suffix(1);
  if (name.empty() || name.size() > 253) return {};
  std::string out;
  out.reserve(name.size());
  for (char c : name) {
    const auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u >= 0x7f || c == '/' || c == '@' || c == '\\') return {};
    out += (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
  }
  return out;
}

Tenants Tenants::parse(std::string_view json_text, const Env& base) {
  // A name given twice in one object (a tenant block copied and not renamed, a variable
  // set twice) would keep only the last: refused, as a host listed twice is.
  std::vector<std::set<std::string>> open_objects;
  std::string repeated;
  auto note_repeats = [&](int, json::parse_event_t event, json& parsed) {
    if (event == json::parse_event_t::object_start) open_objects.emplace_back();
    if (event == json::parse_event_t::object_end) open_objects.pop_back();
    if (event == json::parse_event_t::key && !open_objects.back().insert(parsed.get<std::string>()).second &&
        repeated.empty()) {
      repeated = parsed.get<std::string>();
    }
    return true;
  };
  const json document = json::parse(json_text, note_repeats, /*allow_exceptions=*/false);
  if (document.is_discarded()) invalid("the file", "not valid JSON");
  if (!repeated.empty()) invalid("the file", "\"" + repeated + "\" is given twice in one object");
  if (!document.is_object() || !document.contains("tenants") || !document["tenants"].is_object()) {
    invalid("the file", "expected an object with a \"tenants\" object");
  }
  Tenants out;
  for (const auto& [name, settings] : document["tenants"].items()) {
    const std::string where = "tenant \"" + name + "\"";
    if (!valid_tenant_name(name)) invalid(where, "the name must be 1-63 characters of a-z, 0-9, - and _");
    if (!settings.is_object()) invalid(where, "expected an object");
    for (const auto& [key, value] : settings.items()) {
      if (key != "hosts" && key != "env") invalid(where, "unknown field \"" + key + "\" (hosts, env)");
    }
    Tenant tenant{name, {}, base};
    const auto hosts = settings.find("hosts");
    if (hosts == settings.end() || !hosts->is_array() || hosts->empty()) {
      invalid(where, "\"hosts\" must be a non-empty array of host names");
    }
    for (const auto& host : *hosts) {
      if (!host.is_string()) invalid(where, "every host must be a string");
      std::string normalized = normalized_host(host.get<std::string>());
      if (normalized.empty() || normalized != normalized_host(normalized) ||
          host.get<std::string>().find(':') != std::string::npos) {
        invalid(where, "\"" + host.get<std::string>() + "\" is not a host name (no port, no scheme)");
      }
      auto [it, inserted] = out.by_host_.emplace(normalized, out.tenants_.size());
      if (!inserted && it->second == out.tenants_.size()) invalid(where, "host \"" + normalized + "\" is listed twice");
      if (!inserted) {
        invalid(where, "host \"" + normalized + "\" is also served by tenant \"" + out.tenants_[it->second].name + "\"");
      }
      tenant.hosts.push_back(std::move(normalized));
    }
    if (const auto env = settings.find("env"); env != settings.end()) {
      if (!env->is_object()) invalid(where, "\"env\" must be an object of variables");
      for (const auto& [variable, value] : env->items()) {
        if (!valid_variable_name(variable)) invalid(where, "\"" + variable + "\" is not an environment variable name");
        if (!value.is_string()) invalid(where, variable + " must be a string, as in an environment");
        tenant.env.set(variable, value.get<std::string>());
      }
    }
    out.tenants_.push_back(std::move(tenant));
  }
  if (out.tenants_.empty()) invalid("the file", "no tenants");
  return out;
}

const Tenant* Tenants::find(std::string_view name) const {
  for (const auto& tenant : tenants_) {
    if (tenant.name == name) return &tenant;
  }
  return nullptr;
}

const Tenant* Tenants::for_host(std::string_view host_header) const {
  auto it = by_host_.find(normalized_host(host_header));
  return it == by_host_.end() ? nullptr : &tenants_[it->second];
}

}  // namespace sluice
