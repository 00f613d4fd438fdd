// `crucible keygen --out PATH`: a CurveZMQ key pair for the coordinator, a
// runner or a client (PATH.key, secret, mode 0600; PATH.pub, public).
#include <cstdio>
#include <memory>
#include <string>

#include "cli/commands.h"
#include "cli/common.h"
#include "protocol/curve.h"

namespace crucible::cli {

namespace {

struct KeygenArgs {
  std::string out;
  bool force = false;
};

int Keygen(const KeygenArgs& args) {
  auto keys = protocol::GenerateKeyPair();
  if (!keys) return ReportError(keys.error());
  auto st = protocol::WriteKeyFiles(args.out, *keys, args.force);
  if (!st) return ReportError(st.error());
  std::printf("%s.key: key pair (secret, mode 0600)\n%s.pub: public key %s\n", args.out.c_str(),
              args.out.c_str(), keys->public_key.c_str());
  return 0;
}

}  // namespace

void AddKeygenCommand(CLI::App& app, int* exit_code) {
  auto args = std::make_shared<KeygenArgs>();
  auto* cmd = app.add_subcommand(
      "keygen",
      "Make a CurveZMQ key pair for the farm: PATH.key (public and secret key, mode 0600) and "
      "PATH.pub (public key, for the coordinator's --authorized-keys directory or the "
      "--coordinator-key of runners and clients).");
  cmd->add_option("--out", args->out, "PATH: writes PATH.key and PATH.pub")->required();
  cmd->add_flag("--force", args->force, "replace existing key files");
  cmd->callback([args, exit_code] { *exit_code = Keygen(*args); });
}

}  // namespace crucible::cli
