// capsule-host guest SDK for AssemblyScript. Import from here:
//
//   import { HttpRequest, request, stream, input, outputString } from "../sdk";

export * from "./http";
export * from "./json";
export * from "./memory";
export * from "./bytes";
export * from "./hash";
export { encode as base64Encode, decode as base64Decode, decodeBytes as base64DecodeBytes } from "./base64";
export { capsuleAbort } from "./abort";
