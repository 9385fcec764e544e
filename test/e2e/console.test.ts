import { existsSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Browser, chromium, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Receiver } from "../fixtures/receiver.js";
import {
  clientKey,
  eventually,
  fastMessages,
  isolate,
  phoneRack,
  registeredGateway,
  rest,
  startServer,
} from "../helpers.js";

/**
 * The operator console in real headless Chromium (CHROMIUM_PATH, else Debian's package, else the
 * build the npm package @sparticuz/chromium ships with its own libraries; driven by playwright-core),
 * against a running server with a Temporal worker and simulated phones. With
 * SCREENSHOTS=docs/screenshots the views' screenshots are written where the README shows them.
 */
async function chromiumPath(): Promise<string> {
  if (process.env.CHROMIUM_PATH !== undefined) return process.env.CHROMIUM_PATH;
  if (existsSync("/usr/bin/chromium")) return "/usr/bin/chromium";
  // Unpacked into the machine's temp folder once; its shared libraries beside it.
  const { default: packaged } = await import("@sparticuz/chromium");
  return packaged.executablePath();
}
const shots = process.env.SCREENSHOTS ?? mkdtempSync(join(tmpdir(), "smsgw-console-"));

let server: Awaited<ReturnType<typeof startServer>>;
let browser: Browser;
let admin: string;
const phones = phoneRack(() => server);
const receiver = new Receiver();

beforeAll(async () => {
  const executablePath = await chromiumPath();
  if (!existsSync(executablePath)) throw new Error(`Chromium is not at ${executablePath}`);
  server = await startServer(
    {
      ...fastMessages,
      WEBHOOK_ALLOW_PRIVATE_TARGETS: "true",
      SECRET_KEY_BASE: "test-secret-key-base",
      TEMPORAL_UI_URL: "http://localhost:8233",
    },
    { worker: true },
  );
  await isolate(server);
  await server.deps.orm.em.getConnection().execute("update webhooks set active = false");
  admin = await clientKey(server, "admin");
  await receiver.start();
  browser = await chromium.launch({
    executablePath,
    // As root in a sandbox, and with no network but this machine's.
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
}, 60_000);

afterAll(async () => {
  await phones.disconnectAll();
  await browser?.close();
  await receiver.stop();
  await server?.stop();
});

async function page(width = 1280, height = 800): Promise<Page> {
  const context = await browser.newContext({ viewport: { width, height } });
  const opened = await context.newPage();
  await opened.goto(`${server.url}/`);
  return opened;
}

async function signIn(key: string, width?: number): Promise<Page> {
  const opened = await page(width);
  await opened.getByLabel("API key").fill(key);
  await opened.getByRole("button", { name: "Sign in" }).click();
  await opened.getByRole("navigation", { name: "Console" }).waitFor();
  return opened;
}

const shoot = (opened: Page, name: string) => opened.screenshot({ path: join(shots, `${name}.png`), fullPage: true });

describe("the operator console", () => {
  it("is served at /console with cache headers, and / leads there", async () => {
    const root = await fetch(`${server.url}/`, { redirect: "manual" });
    expect(root.status).toBe(302);
    expect(root.headers.get("location")).toBe("/console/");
    const index = await fetch(`${server.url}/console/`);
    expect(index.status).toBe(200);
    expect(index.headers.get("cache-control")).toBe("no-cache");
    const html = await index.text();
    const asset = /src="(\/console\/assets\/[^"]+\.js)"/.exec(html)?.[1];
    expect(asset).toBeDefined();
    const script = await fetch(`${server.url}${asset}`);
    expect(script.headers.get("cache-control")).toContain("immutable");
    expect(script.headers.get("content-type")).toContain("javascript");
    expect((await fetch(`${server.url}/console/assets/missing.js`)).status).toBe(404);
  });

  it("refuses a wrong key with the server's reason, and keeps nothing of it", async () => {
    const opened = await page();
    await opened.getByLabel("API key").fill(`api_live_${"x".repeat(40)}`);
    await opened.getByRole("button", { name: "Sign in" }).click();
    await expect.poll(() => opened.getByRole("alert").textContent()).toContain("Invalid API key");
    expect(await opened.evaluate('sessionStorage.getItem("smsgw.key")')).toBeNull();
    expect(opened.url()).not.toContain("api_live_");
    await opened.context().close();
  });

  it("shows a gateway turning online and offline live, and changes its priority in place", async () => {
    const opened = await signIn(admin);
    await opened.getByRole("link", { name: "Fleet" }).click();
    await opened.getByText("live", { exact: true }).waitFor();
    const phone = await phones.connect();
    const row = opened.locator(`tr[data-device="${phone.deviceId}"]`);
    // Pushed by the server's stream: no reload, within two seconds.
    await row.getByText("online").waitFor({ timeout: 2500 });
    await expect.poll(() => row.textContent()).toContain("via stream");
    await expect.poll(() => row.textContent(), { timeout: 5000 }).toContain("80 %");
    await shoot(opened, "fleet");

    await row.getByLabel(`Priority of ${phone.deviceId}`).fill("7");
    await row.getByRole("button", { name: "Set" }).click();
    await eventually(async () => ((await server.deps.gateways.find(phone.id))?.priority === 7 ? true : undefined));

    await phone.disconnect();
    await row.getByText("offline").waitFor({ timeout: 2500 });
    await opened.context().close();
  });

  it("creates a webhook and shows its test delivery", async () => {
    const opened = await signIn(admin);
    await opened.getByRole("link", { name: "Webhooks" }).click();
    await opened.getByLabel("URL").first().fill(receiver.url);
    await opened.getByRole("button", { name: "Create webhook" }).click();
    await opened.getByRole("heading", { name: receiver.url }).waitFor();
    const card = opened.locator("article.webhook", { hasText: receiver.url });
    await card.getByRole("button", { name: "Send test event" }).click();
    await expect
      .poll(() => opened.getByRole("status").first().textContent())
      .toContain("Test event delivered: HTTP 200");
    expect(receiver.requests.some((request) => request.body.includes('"webhook_test"'))).toBe(true);
    await shoot(opened, "webhooks");
    await opened.context().close();
  });

  it("cancels a message waiting for a gateway", async () => {
    // No gateway is online: the message waits in the queue.
    await isolate(server);
    const opened = await signIn(admin);
    await opened.getByRole("link", { name: "Messages" }).click();
    await opened.getByLabel("To").fill("+14155550124");
    await opened.getByRole("button", { name: "Send" }).click();
    await opened.getByRole("heading", { name: /^Message msg_/ }).waitFor();
    const messageId = ((await opened.getByRole("heading", { name: /^Message msg_/ }).textContent()) ?? "").slice(8);
    await opened.getByRole("button", { name: "Cancel message" }).click();
    await expect.poll(() => opened.locator("dl.facts").textContent()).toContain("cancelled");
    const status = await rest(server, "GET", `/api/v1/sms/status/${messageId}`, { key: admin });
    expect(status.body).toMatchObject({ status: "cancelled" });
    await opened.context().close();
  });

  it("sends a test SMS and shows it delivered, with its attempt, events and workflow", async () => {
    const phone = await phones.connect();
    await server.deps.gateways.update(phone.id, { active: true });
    const opened = await signIn(admin);
    await opened.getByRole("link", { name: "Messages" }).click();
    await opened.getByLabel("To").fill("+14155550123");
    await opened.getByRole("button", { name: "Send" }).click();
    await opened.getByRole("heading", { name: /^Message msg_/ }).waitFor();
    const facts = opened.locator("dl.facts");
    await expect.poll(() => facts.textContent(), { timeout: 15_000 }).toContain("delivered");
    const attempt = opened.locator("tr.attempt").first();
    await expect.poll(() => attempt.textContent()).toContain(phone.deviceId);
    // The attempt ended with the phone sending it; the message went on to be delivered.
    await expect.poll(() => attempt.textContent()).toContain("sent");
    await expect.poll(() => opened.locator("ol.events").textContent()).toContain("sms_delivered");
    const link = opened.getByRole("link", { name: /in the Temporal UI/ });
    expect(await link.getAttribute("href")).toMatch(
      /^http:\/\/localhost:8233\/namespaces\/default\/workflows\/message%2Fmsg_/,
    );
    // The webhook made before hears of it; the journey shows that delivery and its attempt.
    const deliveries = opened.getByRole("region", { name: "Webhook deliveries" });
    await expect.poll(() => deliveries.textContent(), { timeout: 15_000 }).toContain("succeeded");
    expect(await deliveries.textContent()).toContain(receiver.url);
    await shoot(opened, "message");

    // The list shows it, and filters on its status.
    await opened.getByRole("link", { name: "← Messages" }).click();
    await opened.getByLabel("Status").selectOption("delivered");
    await opened.getByRole("button", { name: "Filter" }).click();
    await expect.poll(() => opened.locator("tbody").first().textContent()).toContain("+14155550123");
    await shoot(opened, "messages");
    await opened.context().close();
  });

  it("creates a key shown once, revokes it, and signs out a console whose key was revoked", async () => {
    const opened = await signIn(admin);
    await opened.getByRole("link", { name: "Keys" }).click();
    await opened.getByLabel("Name").fill("console-made admin");
    await opened.getByLabel("Scope").selectOption("admin");
    await opened.getByRole("button", { name: "Create key" }).click();
    const secret = (await opened.locator("code.secret").textContent()) ?? "";
    expect(secret).toMatch(/^api_live_[0-9a-z]{40}$/);
    expect((await rest(server, "GET", "/api/v1/me", { key: secret })).body).toMatchObject({ scope: "admin" });

    // The new key signs in a second console; revoking it there sends that console back to sign-in.
    const other = await signIn(secret);
    await shoot(opened, "keys");
    const row = opened.locator("tr", { hasText: "console-made admin" });
    opened.once("dialog", (dialog) => void dialog.accept());
    await row.getByRole("button", { name: /Revoke/ }).click();
    await row.getByText("revoked").waitFor();
    expect((await rest(server, "GET", "/api/v1/me", { key: secret })).status).toBe(401);
    await other.getByRole("link", { name: "Keys" }).click();
    await expect.poll(() => other.getByRole("alert").textContent()).toContain("Signed out");
    await other.getByLabel("API key").waitFor();
    await other.context().close();
    await opened.context().close();
  });

  it("tells phones running the SMSGate app what to do, and makes the registration token they sign up with", async () => {
    const opened = await signIn(admin);
    await opened.getByRole("link", { name: "Keys" }).click();
    await opened.getByLabel("Name").fill("console phones");
    await opened.getByLabel("Scope").selectOption("registration");
    await opened.getByRole("button", { name: "Create key" }).click();
    const token = (await opened.locator("code.secret").textContent()) ?? "";
    expect(token).toMatch(/^reg_live_[0-9a-z]{40}$/);
    const registered = await fetch(`${server.url}/api/mobile/v1/device`, {
      method: "POST",
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      body: JSON.stringify({ name: "Pixel/8", simCards: [] }),
    });
    const { id } = (await registered.json()) as { id: string };
    await opened.getByRole("link", { name: "SMSGate phones" }).click();
    await opened.getByRole("combobox", { name: /^Phone/ }).selectOption(id);
    await opened.getByLabel("Ping every (s)").fill("120");
    await opened.getByRole("button", { name: "Send settings" }).click();
    await expect.poll(() => opened.getByRole("status").textContent()).toContain("Settings sent to 1 phone(s)");
    await expect.poll(() => opened.locator("tr", { hasText: id }).textContent()).toContain("120 s");
    const listed = await rest(server, "GET", `/api/v1/admin/smsgate/settings?gateway_id=${id}`, { key: admin });
    expect(listed.body).toMatchObject({
      phones: [{ gateway_id: id, settings: { ping_interval_seconds: 120, notification_channel: null } }],
    });
    await opened.context().close();
  });

  it("shows a client key only its own messages, without the operator's views", async () => {
    const mine = await clientKey(server);
    const sent = await rest(server, "POST", "/api/v1/sms/send", {
      key: mine,
      body: { to: "+14155550177", message: "only mine" },
    });
    expect(sent.status).toBe(202);
    const opened = await signIn(mine);
    const nav = opened.getByRole("navigation", { name: "Console" });
    expect(await nav.getByRole("link", { name: "Fleet" }).count()).toBe(0);
    expect(await nav.getByRole("link", { name: "Keys" }).count()).toBe(0);
    await expect.poll(() => opened.locator("tbody").first().textContent()).toContain("+14155550177");
    const rows = await opened.locator("tbody").first().locator("tr").count();
    expect(rows).toBe(1);
    await opened.context().close();
  });

  it("shows the overview and inbound SMS, and holds its layout at a phone's width", async () => {
    const gateway = await registeredGateway(server);
    const received = await rest(server, "POST", "/api/v1/gateway/sms/received", {
      key: gateway.key,
      body: { sender: "+14155550199", message: "Hello from a customer", timestamp: new Date().toISOString() },
    });
    expect(received.status).toBeLessThan(300);
    // A few more messages, so that the chart has something to show.
    for (let i = 0; i < 12; i++) {
      await rest(server, "POST", "/api/v1/sms/send", {
        key: admin,
        body: { to: "+14155550142", message: `note ${i}` },
      });
    }
    const opened = await signIn(admin);
    await opened.getByRole("link", { name: "Overview" }).click();
    await opened.getByRole("img", { name: /Messages per minute/ }).waitFor();
    await expect.poll(() => opened.locator(".tiles").textContent()).toContain("gateways online");
    await shoot(opened, "overview");
    await opened.getByRole("link", { name: "Inbound" }).click();
    await expect.poll(() => opened.locator("tbody").first().textContent()).toContain("Hello from a customer");
    await shoot(opened, "inbound");
    await opened.context().close();

    // A phone's width: nothing wider than the screen but the tables, which scroll on their own.
    const narrow = await signIn(admin, 390);
    await narrow.getByRole("link", { name: "Messages" }).click();
    await narrow.getByRole("heading", { name: "Messages" }).waitFor();
    const overflow = await narrow.evaluate<number>("document.documentElement.scrollWidth - window.innerWidth");
    expect(overflow).toBeLessThanOrEqual(0);
    await shoot(narrow, "messages-phone");
    await narrow.context().close();
  });

  it("can be used with the keyboard alone", async () => {
    const opened = await page();
    await opened.keyboard.press("Tab");
    await opened.keyboard.type(admin);
    await opened.keyboard.press("Enter");
    await opened.getByRole("navigation", { name: "Console" }).waitFor();
    // Skip link first, then the views in order.
    await opened.keyboard.press("Tab");
    expect(await opened.evaluate("document.activeElement?.textContent")).toBe("Skip to content");
    await opened.keyboard.press("Tab");
    await opened.keyboard.press("Tab");
    await opened.keyboard.press("Enter");
    await opened.getByRole("heading", { name: /^Fleet/ }).waitFor();
    await opened.context().close();
  });
});
