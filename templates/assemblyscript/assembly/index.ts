// {{name}}: a capsule for capsule-host. `greet` asks an HTTP API for a greeting and says it to the input.
import { Config } from "@extism/as-pdk";
import { HttpRequest, fail, inputString, outputString, request } from "capsule-host/sdk";

/** The API's origin, unless the host sets the `api_url` config value. */
const DEFAULT_API_URL = "https://greetings.test";

/**
 * Input: a name (text; empty means "world"). Output: `<greeting>, <name>!`.
 * Fails (the host's call rejects) when the request fails or the API does not answer
 * 200 with `{"greeting": "<text>"}`.
 */
export function greet(): i32 {
  const name = inputString();
  const configured = Config.get("api_url");
  const api = configured !== null ? configured : DEFAULT_API_URL;

  const response = request(
    HttpRequest.get(api + "/greeting").header("accept", "application/json").timeout(5000),
  );
  // The SDK reports failures as values: check `error` (denied, timeout, ...) before the status.
  const error = response.error;
  if (error !== null) return fail("greeting request failed: " + error.code + ": " + error.message);
  if (response.status != 200) return fail("the greeting API answered " + response.status.toString());

  const doc = response.json();
  const greeting = doc !== null ? doc.get("greeting") : null;
  if (greeting === null || !greeting.isString) return fail('the greeting API did not answer {"greeting": "..."}');

  outputString(greeting.str() + ", " + (name.length > 0 ? name : "world") + "!");
  return 0;
}
