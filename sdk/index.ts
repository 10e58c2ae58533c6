// The AssemblyScript SDK's import path for capsules built outside this repository: `import { ... } from "capsule-host/sdk"`.
export * from "../capsules/sdk/index";
