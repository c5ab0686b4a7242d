// The phrase lists are JSON data files bundled by esbuild; their shape is checked in crisis.ts.
declare module "*.json" {
  const value: { language: string; reviewed: string; categories: Record<string, string[]> };
  export default value;
}
