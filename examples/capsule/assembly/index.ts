// forecast: a capsule that fetches an hourly forecast (JSON) through the host and returns a summary.
import { HttpRequest, JsonWriter, inputString, outputString, request } from "capsule-host/sdk";

/**
 * Input: the forecast's URL (text). The API answers `{"city": "...", "hours": [{"tempC": n}, ...]}`.
 * Output (JSON): `{"city": "...", "hours": n, "minC": n, "maxC": n}`, or `{"error": {"code": "...",
 * "message": "..."}}` when the host refused or the request failed: the SDK gives failures as values,
 * so the capsule decides what to do with them instead of trapping.
 */
export function forecast_summary(): i32 {
  const response = request(HttpRequest.get(inputString()).header("accept", "application/json").timeout(5000));
  const error = response.error;
  if (error !== null) return reply(error.code, error.message);
  if (response.status != 200) return reply("http_status", "the API answered " + response.status.toString());

  const doc = response.json();
  const hours = doc !== null ? doc.get("hours") : null;
  const items = hours !== null ? hours.items : null;
  if (doc === null || items === null || items.length == 0) return reply("bad_answer", "no hours in the answer");

  let min = F64.MAX_VALUE;
  let max = -F64.MAX_VALUE;
  for (let i = 0; i < items.length; i++) {
    const temp = items[i].getNumber("tempC");
    if (temp < min) min = temp;
    if (temp > max) max = temp;
  }
  const w = new JsonWriter();
  w.beginObject()
    .key("city").string(doc.getString("city", "?"))
    .key("hours").int(items.length)
    .key("minC").number(min)
    .key("maxC").number(max)
    .endObject();
  outputString(w.toString());
  return 0;
}

/** Outputs `{"error": {"code": ..., "message": ...}}` and ends the call normally. */
function reply(code: string, message: string): i32 {
  const w = new JsonWriter();
  w.beginObject().key("error").beginObject().key("code").string(code).key("message").string(message).endObject().endObject();
  outputString(w.toString());
  return 0;
}
