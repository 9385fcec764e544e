import {
  createRegistry,
  type DescFile,
  type DescService,
  type MessageInitShape,
  type Registry,
  toBinary,
} from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import { Code, type ConnectRouter } from "@connectrpc/connect";
import * as v1 from "../../gen/grpc/reflection/v1/reflection_pb.js";
import * as v1alpha from "../../gen/grpc/reflection/v1alpha/reflection_pb.js";

/** The two versions of the protocol share one shape; their requests and answers as plain objects. */
type Request = v1.ServerReflectionRequest | v1alpha.ServerReflectionRequest;
type Answer = MessageInitShape<typeof v1.ServerReflectionResponseSchema>["messageResponse"];

/** The reflection services themselves, which reflection lists and describes too. */
export const reflectionServices = [v1.ServerReflection, v1alpha.ServerReflection] as const;

/** Every file `files` import, themselves included, each once, the given ones first. */
function withDependencies(files: DescFile[]): DescFile[] {
  const seen = new Map<string, DescFile>();
  const visit = (file: DescFile) => {
    if (seen.has(file.name)) return;
    seen.set(file.name, file);
    for (const dependency of file.dependencies) visit(dependency);
  };
  for (const file of files) visit(file);
  return [...seen.values()];
}

/**
 * gRPC server reflection (`grpc.reflection.v1` and `v1alpha`) over the services this server serves:
 * tools such as grpcurl, `buf curl`, Postman or grpcui list the services and fetch their descriptors
 * (with every file they import) from the running server, with no copy of the `.proto` files.
 */
export class Reflection {
  private readonly names: string[];
  private readonly files: Map<string, DescFile>;
  private readonly registry: Registry;

  constructor(served: readonly DescService[]) {
    const all = [...served, ...reflectionServices];
    this.names = all.map((service) => service.typeName);
    this.files = new Map(withDependencies(all.map((service) => service.file)).map((file) => [file.name, file]));
    this.registry = createRegistry(...this.files.values());
  }

  /** A file and everything it imports, serialized, the file first (what the protocol asks for). */
  private described(file: DescFile): Answer {
    const fileDescriptorProto = withDependencies([file]).map((each) => toBinary(FileDescriptorProtoSchema, each.proto));
    return { case: "fileDescriptorResponse", value: { fileDescriptorProto } };
  }

  private notFound(what: string): Answer {
    return { case: "errorResponse", value: { errorCode: Code.NotFound, errorMessage: `${what} not found` } };
  }

  /** The file that declares a symbol: a type, a service, or a method, field or enum value within one. */
  private fileOf(symbol: string): DescFile | undefined {
    const found = this.registry.get(symbol);
    if (found !== undefined) return found.file;
    const parent = symbol.slice(0, Math.max(0, symbol.lastIndexOf(".")));
    return parent === "" ? undefined : this.registry.get(parent)?.file;
  }

  /** Answers one request. */
  answer(request: Request): Answer {
    const { messageRequest } = request;
    switch (messageRequest.case) {
      case "listServices":
        return { case: "listServicesResponse", value: { service: this.names.map((name) => ({ name })) } };
      case "fileByFilename": {
        const file = this.files.get(messageRequest.value);
        return file === undefined ? this.notFound(`file ${messageRequest.value}`) : this.described(file);
      }
      case "fileContainingSymbol": {
        const file = this.fileOf(messageRequest.value);
        return file === undefined ? this.notFound(`symbol ${messageRequest.value}`) : this.described(file);
      }
      case "fileContainingExtension": {
        const { containingType, extensionNumber } = messageRequest.value;
        const extendee = this.registry.getMessage(containingType);
        const extension = extendee === undefined ? undefined : this.registry.getExtensionFor(extendee, extensionNumber);
        return extension === undefined
          ? this.notFound(`extension ${extensionNumber} of ${containingType}`)
          : this.described(extension.file);
      }
      case "allExtensionNumbersOfType": {
        const typeName = messageRequest.value;
        if (this.registry.getMessage(typeName) === undefined) return this.notFound(`type ${typeName}`);
        const extensionNumber = [...this.registry].flatMap((desc) =>
          desc.kind === "extension" && desc.extendee.typeName === typeName ? [desc.number] : [],
        );
        return { case: "allExtensionNumbersResponse", value: { baseTypeName: typeName, extensionNumber } };
      }
      default:
        return {
          case: "errorResponse",
          value: { errorCode: Code.InvalidArgument, errorMessage: "an empty or unknown reflection request" },
        };
    }
  }

  /** Registers both versions of the reflection service on a Connect router (gRPC, gRPC-Web, Connect). */
  register(router: ConnectRouter): void {
    const reflection = this;
    // The two versions differ in their package name only: one implementation serves both (their
    // message types are the same shape under two names, hence the casts).
    async function* serverReflectionInfo(requests: AsyncIterable<Request>) {
      for await (const request of requests) {
        yield { validHost: request.host, originalRequest: request, messageResponse: reflection.answer(request) };
      }
    }
    router.service(v1.ServerReflection, { serverReflectionInfo: serverReflectionInfo as never });
    router.service(v1alpha.ServerReflection, { serverReflectionInfo: serverReflectionInfo as never });
  }
}
