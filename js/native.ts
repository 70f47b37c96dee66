// The N-API binding built by napi-rs from crates/acdc-node.
import * as native from '../native/index';

export default native;
export type { SystemData, PairsData } from '../native/index';
