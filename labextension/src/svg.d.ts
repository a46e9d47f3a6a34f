// SVG files are bundled as strings (for LabIcon).
declare module '*.svg' {
  const value: string;
  export default value;
}
