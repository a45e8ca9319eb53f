export * from "./common.js";
export * from "./application.js";
export * from "./functioncall.js";
