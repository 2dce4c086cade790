// Native libraries are imported as embedded files (`with { type: "file" }`): the value is a path.
declare module "*.so" {
  const path: string;
  export default path;
}
