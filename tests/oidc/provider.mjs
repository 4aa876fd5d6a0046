// A real OpenID Connect provider on loopback for the sign-in tests: the
// certified `oidc-provider` package, one confidential client, a few people
// and a login page a test (or a browser) submits. Not for production.
//
//   node provider.mjs CLIENT_ID CLIENT_SECRET REDIRECT_URI
//
// Listens on 127.0.0.1 on a free port and prints one line,
// `issuer http://localhost:PORT`, once it serves. The issuer's host is
// `localhost`, not 127.0.0.1, so in a browser the provider is another site
// than ambassador (as a real identity provider is) and cookie rules apply.
// It ends when its standard input closes (the test that started it ended).

import http from 'node:http';
import Provider from 'oidc-provider';

const [clientId, clientSecret, redirectUri] = process.argv.slice(2);
if (!clientId || !clientSecret || !redirectUri) {
  console.error('usage: node provider.mjs CLIENT_ID CLIENT_SECRET REDIRECT_URI');
  process.exit(2);
}

// Who can sign in, by login name. `groups` is the claim the tests map to roles.
const PEOPLE = {
  alice: { email: 'alice.admin@hospital.example.org', name: 'Alice Admin', groups: ['ambassador-admins'] },
  carol: { email: 'carol.coord@hospital.example.org', name: 'Carol Coordinator', groups: ['staff', 'training-coordinators'] },
  victor: { email: 'victor.viewer@hospital.example.org', name: 'Victor Viewer', groups: ['leadership'] },
  nadia: { email: 'nadia.new@hospital.example.org', name: 'Nadia New', groups: [] },
  eve: { email: 'eve@elsewhere.example.com', name: 'Eve Elsewhere', groups: ['training-coordinators'] },
  uma: { email: 'uma.unverified@hospital.example.org', name: 'Uma Unverified', groups: [], email_verified: false },
};

// Standard output carries only the issuer line (the test stops reading after
// it). The package's development notices are dropped; errors go to stderr.
process.stdout.on('error', () => {});
console.log = console.info = console.warn = () => {};

const escape = (s) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

const server = http.createServer();
server.listen(0, '127.0.0.1', () => {
  const { port } = server.address();
  const issuer = `http://localhost:${port}`;
  const provider = new Provider(issuer, {
    clients: [{
      client_id: clientId,
      client_secret: clientSecret,
      redirect_uris: [redirectUri],
      grant_types: ['authorization_code'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
    }],
    claims: {
      openid: ['sub'],
      email: ['email', 'email_verified'],
      profile: ['name'],
      groups: ['groups'],
    },
    scopes: ['openid', 'email', 'profile', 'groups'],
    // Claims in the ID token itself, as Entra ID and most providers send them.
    conformIdTokenClaims: false,
    pkce: { required: () => true },
    features: { devInteractions: { enabled: false } },
    cookies: { keys: ['ambassador-test-provider-cookie-key'] },
    async findAccount(ctx, id) {
      const person = PEOPLE[id];
      if (!person) return undefined;
      return {
        accountId: id,
        async claims() {
          return {
            sub: id,
            email: person.email,
            email_verified: person.email_verified ?? true,
            name: person.name,
            groups: person.groups,
          };
        },
      };
    },
    // A first-party client: every scope it asks for is granted without a consent page.
    async loadExistingGrant(ctx) {
      const existing = ctx.oidc.result?.consent?.grantId
        || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
      if (existing) return ctx.oidc.provider.Grant.find(existing);
      const grant = new ctx.oidc.provider.Grant({
        clientId: ctx.oidc.client.clientId,
        accountId: ctx.oidc.session.accountId,
      });
      grant.addOIDCScope('openid email profile groups');
      grant.addOIDCClaims(['email', 'email_verified', 'name', 'groups']);
      await grant.save();
      return grant;
    },
  });
  provider.on('server_error', (ctx, err) => console.error('provider error:', err));
  const callback = provider.callback();

  server.on('request', async (req, res) => {
    const match = /^\/interaction\/([^/?]+)(\/login)?/.exec(req.url);
    if (!match) return callback(req, res);
    try {
      const details = await provider.interactionDetails(req, res);
      if (req.method === 'GET' && !match[2]) {
        res.setHeader('Content-Type', 'text/html; charset=utf-8');
        res.end(`<!doctype html><html lang="en"><head><title>Test provider: sign in</title></head><body>
<h1>Test provider</h1>
<form method="post" action="/interaction/${escape(details.uid)}/login">
<label for="login">Login</label> <input id="login" name="login" autofocus>
<button type="submit">Sign in</button>
</form></body></html>`);
        return;
      }
      if (req.method === 'POST' && match[2]) {
        let body = '';
        for await (const chunk of req) body += chunk;
        const login = new URLSearchParams(body).get('login') ?? '';
        const result = PEOPLE[login]
          ? { login: { accountId: login } }
          : { error: 'access_denied', error_description: `no such person: ${login}` };
        await provider.interactionFinished(req, res, result, { mergeWithLastSubmission: false });
        return;
      }
      res.statusCode = 405;
      res.end();
    } catch (err) {
      res.statusCode = 400;
      res.end(String(err));
    }
  });

  process.stdout.write(`issuer ${issuer}\n`);
});

// The test holds our standard input; when it ends, so do we.
process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
