// Compiled by `npm run typecheck` (tests/unit/web/test_session_api_types.py): the
// declarations describe the client as a frontend team would use it, and the
// generated wire types catch mistakes.
import { ApiError, SessionApi, describeEndReason, type SessionView } from "./session-api.js";

async function example(api: SessionApi): Promise<string> {
  try {
    const { status, session } = await api.create({
      clientId: "web-1",
      model: "roadster",
      configuration: { paint: "#1e6fd9" },
    });
    if (status === 202) return `queued at ${session.position ?? "?"}`;
    const stop = api.follow(session.session_id, session.session_secret ?? "", {
      onView: (view: SessionView) => {
        if (view.state === "ended") console.log(describeEndReason(view.end_reason));
      },
    });
    stop();
    const urls: string[] = (session.ice_servers ?? []).flatMap((s) => s.urls);
    return `${session.stream?.signaling_url ?? ""} ${urls.length}`;
  } catch (err) {
    if (err instanceof ApiError && err.status === 429) return `retry in ${err.retryAfterS ?? 10} s`;
    throw err;
  }
}

function mistakes(view: SessionView): void {
  // @ts-expect-error: not a state the API has
  if (view.state === "streaming") return;
  // @ts-expect-error: the region is a string, not a number
  const n: number = view.region;
  void n;
}

void example;
void mistakes;
