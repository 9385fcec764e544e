// The reference for the accept path in bench:send: a bare Node HTTP endpoint that does only what an
// accepted send must (parse the JSON body, one durable INSERT, answer 202), against the same
// PostgreSQL with the same pool size as smsgw. Usage: bare-endpoint.ts PORT DATABASE_URL
import { createServer } from "node:http";
import pg from "pg";

const [port, databaseUrl] = process.argv.slice(2);
const pool = new pg.Pool({ connectionString: databaseUrl, max: 10 });
await pool.query(`create table if not exists bench_bare (
  id text primary key, recipient text not null, body text not null, created_at timestamptz not null default now())`);
await pool.query("truncate bench_bare");
let sequence = 0;

const server = createServer((request, response) => {
  const chunks: Buffer[] = [];
  request.on("data", (chunk: Buffer) => chunks.push(chunk));
  request.on("end", () => {
    const body = JSON.parse(Buffer.concat(chunks).toString("utf8")) as { to: string; message: string };
    const id = `msg_${process.pid}_${sequence++}`;
    pool.query("insert into bench_bare (id, recipient, body) values ($1, $2, $3)", [id, body.to, body.message]).then(
      () => {
        response.writeHead(202, { "content-type": "application/json" });
        response.end(JSON.stringify({ message_id: id, status: "queued" }));
      },
      (error: unknown) => {
        response.writeHead(500, { "content-type": "application/json" });
        response.end(JSON.stringify({ error: String(error) }));
      },
    );
  });
});
server.listen(Number(port), "127.0.0.1", () => process.stdout.write("ready\n"));
