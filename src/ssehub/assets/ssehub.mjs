// ssehub.js as an ES module: import { SharedEventSource } from "/_ssehub/ssehub.mjs";
import "./ssehub.js";

export const SharedEventSource = globalThis.SharedEventSource;
export default SharedEventSource;
