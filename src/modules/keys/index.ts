export type { KeyScope } from "./api-key.entity.js";
export { ApiKeyEntity, type StoredApiKey } from "./api-key.entity.js";
export { KeyRepository } from "./key.repository.js";
export { type KeyRecord, KeysService, type Principal } from "./keys.service.js";
