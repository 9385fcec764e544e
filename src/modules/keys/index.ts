export { AccessTokenEntity } from "./access-token.entity.js";
export { AccessTokenRepository } from "./access-token.repository.js";
export { AccessTokens, type IssuedToken, type TokenClaims, type TokenPair } from "./access-tokens.js";
export type { KeyScope } from "./api-key.entity.js";
export { ApiKeyEntity, type StoredApiKey } from "./api-key.entity.js";
export { KeyRepository } from "./key.repository.js";
export { type KeyRecord, KeysService, type Principal } from "./keys.service.js";
