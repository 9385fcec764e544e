import { render } from "preact";
import { useEffect, useState } from "preact/hooks";
import { account, describe, storedKey, storeKey, whenKeyRefused } from "./api.js";
import { MessagePage, Messages } from "./messages.js";
import { Fleet, Inbound, Keys, Overview, SmsGatePhones, Webhooks } from "./views.js";
import "./styles.css";

/** Who signed in: what the console shows depends on the key's scope. */
export interface Caller {
  scope: string;
  name: string;
}

interface Route {
  path: string;
  label: string;
  adminOnly: boolean;
}

const routes: Route[] = [
  { path: "overview", label: "Overview", adminOnly: true },
  { path: "fleet", label: "Fleet", adminOnly: true },
  { path: "messages", label: "Messages", adminOnly: false },
  { path: "inbound", label: "Inbound", adminOnly: false },
  { path: "webhooks", label: "Webhooks", adminOnly: true },
  { path: "keys", label: "Keys", adminOnly: true },
  { path: "smsgate", label: "SMSGate phones", adminOnly: true },
];

/** The part of the address after `#/`: the view and its argument. */
function useHash(): string[] {
  const read = () => location.hash.replace(/^#\/?/, "").split("/");
  const [parts, setParts] = useState(read);
  useEffect(() => {
    const changed = () => setParts(read());
    addEventListener("hashchange", changed);
    return () => removeEventListener("hashchange", changed);
  }, []);
  return parts;
}

function SignIn({ reason, onSignedIn }: { reason: string; onSignedIn: (caller: Caller) => void }) {
  const [key, setKey] = useState("");
  const [error, setError] = useState(reason);
  const [busy, setBusy] = useState(false);
  const submit = async (event: Event) => {
    event.preventDefault();
    setBusy(true);
    storeKey(key.trim());
    try {
      const caller = await account.getCaller({});
      setKey("");
      onSignedIn({ scope: caller.scope, name: caller.name });
    } catch (failure) {
      storeKey(null);
      setError(describe(failure));
    } finally {
      setBusy(false);
    }
  };
  return (
    <main class="sign-in">
      <h1>smsgw console</h1>
      <form onSubmit={submit} aria-describedby="sign-in-help">
        <label for="key">API key</label>
        <input
          id="key"
          name="key"
          type="password"
          autocomplete="off"
          spellcheck={false}
          placeholder="api_live_…"
          value={key}
          required
          onInput={(event) => setKey(event.currentTarget.value)}
        />
        <p id="sign-in-help" class="hint">
          An admin key sees everything; a client key sees its own messages. The key is kept in this tab only.
        </p>
        {error !== "" && (
          <p role="alert" class="error">
            {error}
          </p>
        )}
        <button type="submit" disabled={busy}>
          Sign in
        </button>
      </form>
    </main>
  );
}

function App() {
  const [caller, setCaller] = useState<Caller | null>(null);
  const [reason, setReason] = useState("");
  const [checking, setChecking] = useState(storedKey() !== null);
  const [view = "", arg] = useHash();

  useEffect(() => {
    whenKeyRefused((why) => {
      storeKey(null);
      setCaller(null);
      setReason(`Signed out: ${why}`);
    });
    if (storedKey() === null) return;
    account
      .getCaller({})
      .then((found) => setCaller({ scope: found.scope, name: found.name }))
      .catch((failure: unknown) => {
        storeKey(null);
        setReason(describe(failure));
      })
      .finally(() => setChecking(false));
  }, []);

  if (checking) return <p class="loading">Checking the key…</p>;
  if (caller === null)
    return (
      <SignIn
        reason={reason}
        onSignedIn={(found) => {
          setReason("");
          setCaller(found);
        }}
      />
    );

  const isAdmin = caller.scope === "admin";
  const visible = routes.filter((route) => isAdmin || !route.adminOnly);
  const current = visible.find((route) => route.path === view) ?? visible[0];
  const signOut = () => {
    storeKey(null);
    setCaller(null);
    setReason("");
  };
  let page = null;
  switch (current?.path) {
    case "overview":
      page = <Overview />;
      break;
    case "fleet":
      page = <Fleet />;
      break;
    case "messages":
      page = arg ? <MessagePage messageId={decodeURIComponent(arg)} isAdmin={isAdmin} /> : <Messages />;
      break;
    case "inbound":
      page = <Inbound />;
      break;
    case "webhooks":
      page = <Webhooks />;
      break;
    case "keys":
      page = <Keys />;
      break;
    case "smsgate":
      page = <SmsGatePhones />;
      break;
  }
  return (
    <>
      <a class="skip" href="#main">
        Skip to content
      </a>
      <header>
        <span class="brand">smsgw</span>
        <nav aria-label="Console">
          {visible.map((route) => (
            <a
              key={route.path}
              href={`#/${route.path}`}
              aria-current={route.path === current?.path ? "page" : undefined}
            >
              {route.label}
            </a>
          ))}
        </nav>
        <span class="who">
          {caller.name} ({caller.scope}){" "}
          <button type="button" class="link" onClick={signOut}>
            Sign out
          </button>
        </span>
      </header>
      <main id="main" tabIndex={-1}>
        {page}
      </main>
    </>
  );
}

const root = document.getElementById("app");
if (root !== null) render(<App />, root);
