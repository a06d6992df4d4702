// Flow D, the customer organization's side, with nothing but the JDK: sign an
// RS256 access token with the private key of a PKCS#12 keystore (made with
// keytool, see make-keystore.sh) and call the dashboard with it as a Bearer
// token. ssogate verifies it with the keystore's certificate and keeps no
// session: each call carries its token.
//
// Run (Java 11+ runs a single source file directly):
//   SSOGATE_URL=https://dash.example.com KEYSTORE=jde.p12 KEYSTORE_PASSWORD_FILE=jde.pass \
//     java FlowDBearer.java JDE_USER /api/orders     # prints the status and the dashboard's answer
//   java FlowDBearer.java --token JDE_USER           # prints only the token
//
// ssogate config of the org (excerpt):
//   accept_bearer: true
//   keys: [{ alg: RS256, public_key_file: /etc/ssogate/orgs/jde.crt }]
//   # or the keystore itself: { alg: RS256, pkcs12_file: jde.p12, password_file: jde.pass, alias: jde }

import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.KeyStore;
import java.security.PrivateKey;
import java.security.Signature;
import java.time.Duration;
import java.util.Base64;
import java.util.UUID;

public class FlowDBearer {
    public static void main(String[] args) throws Exception {
        boolean tokenOnly = args.length > 0 && args[0].equals("--token");
        int first = tokenOnly ? 1 : 0;
        String principal = args.length > first ? args[first] : "JDE_USER";
        String path = args.length > first + 1 ? args[first + 1] : "/";

        String token = signToken(loadPrivateKey(), principal);
        if (tokenOnly) {
            System.out.println(token);
            return;
        }
        HttpRequest request = HttpRequest.newBuilder(URI.create(env("SSOGATE_URL").replaceAll("/+$", "") + path))
                .header("Authorization", "Bearer " + token)
                .timeout(Duration.ofSeconds(10))
                .build();
        HttpResponse<String> response = HttpClient.newHttpClient().send(request, HttpResponse.BodyHandlers.ofString());
        System.out.println(response.statusCode());
        System.out.println(response.body());
        System.exit(response.statusCode() < 400 ? 0 : 1);
    }

    static PrivateKey loadPrivateKey() throws Exception {
        char[] password = readSecret(env("KEYSTORE_PASSWORD_FILE")).toCharArray();
        String alias = System.getenv().getOrDefault("KEY_ALIAS", "jde");
        KeyStore keystore = KeyStore.getInstance("PKCS12");
        try (var in = Files.newInputStream(Path.of(env("KEYSTORE")))) {
            keystore.load(in, password);
        }
        if (!(keystore.getKey(alias, password) instanceof PrivateKey key)) {
            throw new IllegalStateException("no private key under the alias " + alias);
        }
        return key;
    }

    static String signToken(PrivateKey key, String principal) throws Exception {
        long now = System.currentTimeMillis() / 1000;
        String kid = System.getenv("KEY_ID");
        String header = "{\"alg\":\"RS256\",\"typ\":\"JWT\"" + (kid == null ? "" : ",\"kid\":" + json(kid)) + "}";
        String claims = "{\"sub\":" + json(principal) + ",\"iat\":" + now + ",\"exp\":" + (now + 300)
                + ",\"jti\":\"" + UUID.randomUUID() + "\"}";
        String signingInput = b64(header.getBytes(StandardCharsets.UTF_8)) + "." + b64(claims.getBytes(StandardCharsets.UTF_8));
        Signature rsa = Signature.getInstance("SHA256withRSA");
        rsa.initSign(key);
        rsa.update(signingInput.getBytes(StandardCharsets.US_ASCII));
        return signingInput + "." + b64(rsa.sign());
    }

    static String b64(byte[] bytes) {
        return Base64.getUrlEncoder().withoutPadding().encodeToString(bytes);
    }

    // A JSON string literal (enough for user ids and key ids).
    static String json(String s) {
        StringBuilder out = new StringBuilder("\"");
        for (char c : s.toCharArray()) {
            if (c == '"' || c == '\\') out.append('\\').append(c);
            else if (c < 0x20) out.append(String.format("\\u%04x", (int) c));
            else out.append(c);
        }
        return out.append('"').toString();
    }

    // The secret exactly as ssogate reads it: the file's bytes, one trailing newline removed.
    static String readSecret(String file) throws Exception {
        String s = Files.readString(Path.of(file));
        if (s.endsWith("\r\n")) return s.substring(0, s.length() - 2);
        if (s.endsWith("\n")) return s.substring(0, s.length() - 1);
        return s;
    }

    static String env(String name) {
        String value = System.getenv(name);
        if (value == null || value.isEmpty()) {
            System.err.println("set " + name);
            System.exit(1);
        }
        return value;
    }
}
