// What a `bun test --reporter=junit` file says: how many tests passed, failed and were not run
// (skipped or filtered out by -t), and each failure's test and message, for the check's report.

export interface TestFailure {
  file: string;
  test: string;
  message: string;
}

export interface TestCounts {
  passed: number;
  failed: number;
  notRun: number;
  failures: TestFailure[];
}

const ENTITIES: Record<string, string> = {
  "&lt;": "<",
  "&gt;": ">",
  "&amp;": "&",
  "&quot;": '"',
  "&apos;": "'",
  "&#10;": "\n",
};

function unescapeXml(text: string): string {
  return text.replace(/&(lt|gt|amp|quot|apos|#10);/g, (entity) => ENTITIES[entity]!);
}

function attribute(tag: string, name: string): string {
  return unescapeXml(new RegExp(`\\s${name}="([^"]*)"`).exec(tag)?.[1] ?? "");
}

export function parseJunit(xml: string): TestCounts {
  const counts: TestCounts = { passed: 0, failed: 0, notRun: 0, failures: [] };
  // A testcase is either self-closing or holds <failure>/<skipped/> before its closing tag.
  for (const match of xml.matchAll(/<testcase\b([^>]*?)(\/>|>([\s\S]*?)<\/testcase>)/g)) {
    const tag = match[1]!;
    const body = match[3] ?? "";
    if (/<skipped\b/.test(body)) counts.notRun++;
    else if (/<(failure|error)\b/.test(body)) {
      counts.failed++;
      const failure = /<(?:failure|error)\b([^>]*)>/.exec(body)![1]!;
      const classname = attribute(tag, "classname");
      const name = attribute(tag, "name");
      counts.failures.push({
        file: attribute(tag, "file"),
        test: classname ? `${classname} > ${name}` : name,
        message: attribute(failure, "message").trim(),
      });
    } else counts.passed++;
  }
  return counts;
}

export function addCounts(a: TestCounts, b: TestCounts): TestCounts {
  return {
    passed: a.passed + b.passed,
    failed: a.failed + b.failed,
    notRun: a.notRun + b.notRun,
    failures: [...a.failures, ...b.failures],
  };
}
