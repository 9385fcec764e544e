import type { MessageInitShape } from "@bufbuild/protobuf";
import { timestampDate, timestampFromDate } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, type HandlerContext } from "@connectrpc/connect";
import type { ConnectRequest, ConnectResponseSchema } from "../../gen/smsgw/v1/gateway_pb.js";
import type { DeviceCommand, DeviceConnection, DeviceFrame, DeviceHub } from "../modules/devices/index.js";
import { DomainError, invalid } from "../shared/errors.js";
import { callingGateway } from "./principal.js";

const maxReportIdLength = 64;

/** A frame's report id: undefined when absent; refused when too long. */
export function reportId(value: string): string | undefined {
  if (value === "") return undefined;
  if (value.length > maxReportIdLength)
    throw invalid(`report_id is too long (at most ${maxReportIdLength} characters)`);
  return value;
}

/** A device's stream frame as the hub takes it; undefined for an empty frame. */
export function toFrame(request: ConnectRequest): DeviceFrame | undefined {
  const { frame } = request;
  switch (frame.case) {
    case "heartbeat":
      return { type: "heartbeat", ...frame.value };
    case "ack":
      return { type: "ack", messageId: frame.value.messageId, reportId: reportId(frame.value.reportId) };
    case "deliveryReport":
      return {
        type: "delivery_report",
        messageId: frame.value.messageId,
        status: frame.value.status,
        errorMessage: frame.value.errorMessage ?? null,
        reportId: reportId(frame.value.reportId),
      };
    case "messageReceived":
      return {
        type: "message_received",
        sender: frame.value.sender,
        message: frame.value.message,
        timestamp: frame.value.timestamp === undefined ? undefined : timestampDate(frame.value.timestamp),
        reportId: reportId(frame.value.reportId),
      };
    default:
      return undefined;
  }
}

/** A command as the stream carries it; undefined for those only SMSGate's events stream carries. */
export function toResponse(command: DeviceCommand): MessageInitShape<typeof ConnectResponseSchema> | undefined {
  // Only the SMSGate app's events stream carries these.
  if (command.type === "cancel" || command.type === "settings_updated" || command.type === "smsgate_event")
    return undefined;
  return commandResponse(command);
}

function commandResponse(
  command: Exclude<DeviceCommand, { type: "cancel" | "settings_updated" | "smsgate_event" }>,
): MessageInitShape<typeof ConnectResponseSchema> {
  if (command.type === "ping") return { frame: { case: "ping", value: { sentAt: timestampFromDate(command.sentAt) } } };
  if (command.type === "receipt") {
    const { reportId, error } = command;
    return { frame: { case: "receipt", value: error === undefined ? { reportId } : { reportId, error } } };
  }
  return {
    frame: {
      case: "sendSms",
      value: { messageId: command.messageId, recipient: command.recipient, message: command.message },
    },
  };
}

/**
 * `GatewayService.Connect`: says hello at once (response headers leave with the first message),
 * reads the device's frames concurrently with writing its commands, and ends when either side does.
 */
export async function* deviceStream(
  hub: DeviceHub,
  requests: AsyncIterable<ConnectRequest>,
  ctx: HandlerContext,
): AsyncIterable<MessageInitShape<typeof ConnectResponseSchema>> {
  const gateway = callingGateway(ctx);
  const connection = await hub.connect(gateway, "stream");
  const onAbort = () => connection.close("device_closed");
  ctx.signal.addEventListener("abort", onAbort);
  // A frame refused at the boundary (text that cannot be stored, bytes that do not decode) ends the
  // stream with the client's error.
  let refused: Error | undefined;
  const reading = (async () => {
    try {
      for await (const request of requests) {
        const frame = toFrame(request);
        if (frame !== undefined) await hub.handle(connection, frame);
      }
    } catch (error) {
      // Otherwise the device went away mid-frame; the stream ends below.
      if (error instanceof DomainError) refused = error;
      else if (error instanceof ConnectError && [Code.Internal, Code.InvalidArgument].includes(error.code)) {
        refused = undecodableFrame(error.rawMessage);
      }
    } finally {
      connection.close(connection.closeReason ?? "device_closed");
    }
  })();
  try {
    yield helloOf(hub, gateway.deviceId);
    for await (const command of connection.commands) {
      const response = toResponse(command);
      if (response !== undefined) yield response;
    }
  } finally {
    ctx.signal.removeEventListener("abort", onAbort);
    await hub.disconnect(connection);
    void reading;
  }
  const ending = refused ?? endingOf(connection);
  if (ending !== undefined) throw ending;
}

/** The stream's first message: the device's id and how often it should heartbeat. */
export function helloOf(hub: DeviceHub, deviceId: string): MessageInitShape<typeof ConnectResponseSchema> {
  return { frame: { case: "hello", value: { deviceId, heartbeatIntervalSeconds: hub.heartbeatIntervalSeconds } } };
}

/** How a stream whose connection closed ends for the device: an error, or undefined when it ends well. */
export function endingOf(connection: DeviceConnection): ConnectError | undefined {
  switch (connection.closeReason) {
    case "shutdown":
      return new ConnectError("the server is shutting down; reconnect", Code.Unavailable);
    case "replaced":
      return new ConnectError("a newer connection of this gateway took over", Code.Aborted);
    case "revoked":
      return new ConnectError("the API key of this gateway was revoked", Code.Unauthenticated);
    case "idle":
      return new ConnectError("no frame from the device in time", Code.DeadlineExceeded);
    default:
      return undefined;
  }
}

/** A frame that did not decode, as the device is told. */
export function undecodableFrame(detail: string): ConnectError {
  return new ConnectError(`a frame did not decode: ${detail}`, Code.InvalidArgument);
}
