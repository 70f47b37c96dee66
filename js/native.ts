// The N-API binding built by napi-rs from crates/acdc-node.
import * as native from '../native/index';

export default native;
export type * from '../native/index';
