export { createGateway, type GatewayOptions } from './gateway.js';
