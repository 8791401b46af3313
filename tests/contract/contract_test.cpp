// The tier contract may grow but never break: every message, field, enum value
// and RPC of the committed descriptor set (tests/contract/sluice_v1.desc) must
// still exist in the one built from proto/, with the same number, type and label.
#include <google/protobuf/descriptor.pb.h>
#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

namespace {

using google::protobuf::DescriptorProto;
using google::protobuf::EnumDescriptorProto;
using google::protobuf::FieldDescriptorProto;
using google::protobuf::FileDescriptorSet;

FileDescriptorSet load(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream bytes;
  bytes << in.rdbuf();
  FileDescriptorSet set;
  EXPECT_TRUE(set.ParseFromString(bytes.str())) << "cannot parse " << path;
  return set;
}

void collect_messages(const std::string& prefix, const DescriptorProto& message,
                      std::map<std::string, const DescriptorProto*>& out) {
  std::string name = prefix + "." + message.name();
  out[name] = &message;
  for (const auto& nested : message.nested_type()) collect_messages(name, nested, out);
}

struct Index {
  std::map<std::string, const DescriptorProto*> messages;
  std::map<std::string, const EnumDescriptorProto*> enums;
  std::map<std::string, const google::protobuf::MethodDescriptorProto*> methods;
};

Index index_of(const FileDescriptorSet& set) {
  Index index;
  for (const auto& file : set.file()) {
    if (file.package().rfind("sluice.", 0) != 0) continue;  // imports are not ours
    std::string prefix = "." + file.package();
    for (const auto& message : file.message_type()) collect_messages(prefix, message, index.messages);
    for (const auto& e : file.enum_type()) index.enums[prefix + "." + e.name()] = &e;
    for (const auto& service : file.service()) {
      for (const auto& method : service.method()) {
        index.methods[prefix + "." + service.name() + "/" + method.name()] = &method;
      }
    }
  }
  return index;
}

// Every way `current` breaks `committed`, one line each.
std::vector<std::string> breaking_changes(const FileDescriptorSet& committed, const FileDescriptorSet& current) {
  std::vector<std::string> problems;
  Index before = index_of(committed), after = index_of(current);
  for (const auto& [name, old_message] : before.messages) {
    auto it = after.messages.find(name);
    if (it == after.messages.end()) {
      problems.push_back("message removed: " + name);
      continue;
    }
    std::map<int, const FieldDescriptorProto*> new_fields;
    for (const auto& field : it->second->field()) new_fields[field.number()] = &field;
    for (const auto& field : old_message->field()) {
      std::string where = name + "." + field.name() + " = " + std::to_string(field.number());
      auto found = new_fields.find(field.number());
      if (found == new_fields.end()) {
        problems.push_back("field removed or renumbered: " + where);
        continue;
      }
      const auto& now = *found->second;
      if (now.name() != field.name()) problems.push_back("field renamed: " + where + " → " + now.name());
      if (now.type() != field.type() || now.type_name() != field.type_name()) {
        problems.push_back("field retyped: " + where);
      }
      if (now.label() != field.label()) problems.push_back("field label changed: " + where);
      if (now.has_oneof_index() != field.has_oneof_index()) problems.push_back("field moved in/out of a oneof: " + where);
    }
  }
  for (const auto& [name, old_enum] : before.enums) {
    auto it = after.enums.find(name);
    if (it == after.enums.end()) {
      problems.push_back("enum removed: " + name);
      continue;
    }
    std::map<int, std::string> values;
    for (const auto& value : it->second->value()) values[value.number()] = value.name();
    for (const auto& value : old_enum->value()) {
      auto found = values.find(value.number());
      if (found == values.end() || found->second != value.name()) {
        problems.push_back("enum value changed: " + name + "." + value.name());
      }
    }
  }
  for (const auto& [name, old_method] : before.methods) {
    auto it = after.methods.find(name);
    if (it == after.methods.end()) {
      problems.push_back("rpc removed: " + name);
      continue;
    }
    const auto& now = *it->second;
    if (now.input_type() != old_method->input_type() || now.output_type() != old_method->output_type() ||
        now.client_streaming() != old_method->client_streaming() ||
        now.server_streaming() != old_method->server_streaming()) {
      problems.push_back("rpc signature changed: " + name);
    }
  }
  return problems;
}

std::string joined(const std::vector<std::string>& lines) {
  std::string out;
  for (const auto& line : lines) out += line + "\n";
  return out;
}

const std::string kCommitted = std::string(SLUICE_SOURCE_DIR) + "/tests/contract/sluice_v1.desc";

TEST(Contract, BuiltProtoKeepsEverythingOfTheCommittedDescriptorSet) {
  auto committed = load(kCommitted);
  auto current = load(SLUICE_DESCRIPTOR_SET);
  ASSERT_GT(index_of(committed).messages.size(), 10u);
  auto problems = breaking_changes(committed, current);
  EXPECT_TRUE(problems.empty()) << joined(problems);
}

DescriptorProto* find_message(FileDescriptorSet& set, const std::string& name) {
  for (auto& file : *set.mutable_file()) {
    for (auto& message : *file.mutable_message_type()) {
      if (message.name() == name) return &message;
    }
  }
  return nullptr;
}

TEST(Contract, DetectsRenumberedRetypedAndRemovedFields) {
  auto committed = load(kCommitted);

  auto renumbered = committed;
  find_message(renumbered, "ChannelEvent")->mutable_field(0)->set_number(99);
  EXPECT_FALSE(breaking_changes(committed, renumbered).empty());

  auto retyped = committed;
  find_message(retyped, "TokenReply")->mutable_field(1)->set_type(FieldDescriptorProto::TYPE_STRING);
  EXPECT_FALSE(breaking_changes(committed, retyped).empty());

  auto removed = committed;
  find_message(removed, "StatusFacts")->mutable_field()->RemoveLast();
  EXPECT_FALSE(breaking_changes(committed, removed).empty());
}

TEST(Contract, AddingAFieldIsAllowed) {
  auto committed = load(kCommitted);
  auto extended = committed;
  auto* field = find_message(extended, "ChannelEvent")->add_field();
  field->set_name("added_later");
  field->set_number(1000);
  field->set_type(FieldDescriptorProto::TYPE_STRING);
  field->set_label(FieldDescriptorProto::LABEL_OPTIONAL);
  EXPECT_TRUE(breaking_changes(committed, extended).empty());
}

}  // namespace
