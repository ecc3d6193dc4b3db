/** mqtt-fusion: one topic space for MQTT and plain WebSocket clients. */
export { createGateway, type Gateway, type GatewayUrls, type CreateGatewayExtras, type LogFn } from './gateway.js'
export { resolveOptions, DEFAULTS, type GatewayOptions } from './options.js'
export { ERROR_CODES, FusionError, WS_CLOSE, type ErrorCode } from './errors.js'
export { createDefaultAcl, type Acl, type Identity, type Door } from './policy/acl.js'
export { checkTopicName, checkTopicFilter } from './topics/topic-rules.js'
export { encodeEnvelope, decodeChatPayload, type ChatEnvelope } from './topics/envelope.js'
