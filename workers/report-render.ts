/**
 * Child-process entry of the live report (src/report/render-process.ts): writes one study directory's
 * report and exits. A render holds every result of the study at once (20 000 results: hundreds of MB for
 * a few seconds); in a process of its own that memory goes back to the system when it ends, and the
 * coordinator's RSS and event loop stay free of it.
 */
import { writeStudyReport, type StudyReportOptions } from '../src/report/study.js';
import type { RenderReply, RenderRequest } from '../src/report/render-process.js';

const reply = (m: RenderReply) => process.send!(m, () => process.exit(0));

process.once('message', (m: RenderRequest) => {
  writeStudyReport(m.dir, m.options as StudyReportOptions).then(
    (written) => reply({ ok: true, htmlPath: written.htmlPath }),
    (e: unknown) => reply({ ok: false, error: e instanceof Error ? e.message : String(e) }),
  );
});
// The study run going away (killed) must not leave a render behind.
process.on('disconnect', () => process.exit(0));
