export { Manager } from './manager.ts';
