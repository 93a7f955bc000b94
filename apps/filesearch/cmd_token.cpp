// `filesearch token`: mints an HS256 access token with the secret `serve` verifies, for an
// administrator handing out access (or a script calling the API).
#include <chrono>
#include <cstdio>
#include <ctime>

#include "apps/filesearch/commands.h"
#include "server/auth.h"

namespace fs::cli {

void RegisterToken(CLI::App& app, GlobalFlags& /*flags*/, int* exit_code) {
  auto* cmd = app.add_subcommand("token", "Mint an access token (HS256 JWT) for the web UI and API")
                  ->footer("Examples:\n"
                           "  filesearch token --user alice --paths /srv/share/finance/ --ttl 8h --auth-secret-file /etc/filesearch/hs256.key\n"
                           "  filesearch token --user backup-script --ttl 30d --auth-secret-file ...   every folder, 30 days\n\n"
                           "The token goes to stdout (its user, folders and expiry to stderr). The user pastes it into the\n"
                           "web UI's \"Access token\" box, or a script sends it as 'Authorization: Bearer TOKEN'. The\n"
                           "server must run with the same secret (serve --auth-secret-file FILE); a token stops working\n"
                           "when it expires or when the secret changes.");
  struct Args {
    std::string user;
    std::vector<std::string> paths;
    std::string ttl = "8h";
    bool admin = false;
    std::string secret, secret_file, issuer, audience, paths_claim = "paths";
  };
  auto a = std::make_shared<Args>();
  cmd->add_option("--user", a->user, "Who the token is for (its `sub` claim; shown in the server's access log)")->required();
  cmd->add_option("--paths", a->paths,
                  "Folders (display-path prefixes) the user may see, e.g. /srv/share/finance/; several allowed;\n"
                  "none: every document")
      ->type_name("PREFIX ...");
  cmd->add_option("--ttl", a->ttl, "Lifetime: 90s, 30m, 8h, 7d (at most 366d)")->capture_default_str();
  cmd->add_flag("--admin", a->admin, "May use the /admin/ requests (turning vector search off and on)");
  cmd->add_option("--auth-secret", a->secret, "HS256 shared secret (32+ bytes); prefer --auth-secret-file")
      ->envname("FILESEARCH_AUTH_SECRET");
  cmd->add_option("--auth-secret-file", a->secret_file, "File holding the HS256 secret, the one serve reads")->type_name("FILE");
  cmd->add_option("--jwt-issuer", a->issuer, "Issuer (iss) to put in the token: the server's --jwt-issuer, if it has one");
  cmd->add_option("--jwt-audience", a->audience, "Audience (aud) to put in the token: the server's --jwt-audience, if any");
  cmd->add_option("--jwt-paths-claim", a->paths_claim, "Claim holding the folders: the server's --jwt-paths-claim")
      ->capture_default_str();
  cmd->callback([a, exit_code] {
    auto fail = [exit_code](const std::string& m) {
      std::fprintf(stderr, "filesearch token: %s\n", m.c_str());
      *exit_code = 2;
    };
    if (a->secret.empty() == a->secret_file.empty()) {
      return fail("give the server's secret once: --auth-secret-file FILE (or --auth-secret / $FILESEARCH_AUTH_SECRET)");
    }
    std::string secret = a->secret;
    if (!a->secret_file.empty()) {
      auto s = ReadSecretFile(a->secret_file);
      if (!s.ok()) return fail(s.status().ToString());
      secret = std::move(s).value();
    }
    auto ttl = server::ParseDuration(a->ttl);
    if (!ttl.ok()) return fail("--ttl: " + ttl.status().message());
    server::TokenClaims claims;
    claims.subject = a->user;
    claims.path_prefixes = a->paths;
    claims.ttl_s = *ttl;
    claims.admin = a->admin;
    claims.issuer = a->issuer;
    claims.audience = a->audience;
    claims.paths_claim = a->paths_claim;
    const int64_t now = std::chrono::duration_cast<std::chrono::seconds>(
                            std::chrono::system_clock::now().time_since_epoch()).count();
    auto token = server::MintHs256Token(claims, secret, now);
    if (!token.ok()) return fail(token.status().message());
    std::printf("%s\n", token->c_str());
    std::fflush(stdout);
    const std::time_t expires = static_cast<std::time_t>(now + *ttl);
    std::tm tm{};
    gmtime_r(&expires, &tm);
    char when[40];
    std::strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S UTC", &tm);
    std::string folders;
    for (const auto& p : a->paths) folders += (folders.empty() ? "" : ", ") + p;
    std::fprintf(stderr, "token for %s%s; folders: %s; expires %s\n", a->user.c_str(), a->admin ? " (admin)" : "",
                 folders.empty() ? "all" : folders.c_str(), when);
    *exit_code = 0;
  });
}

}  // namespace fs::cli
