// Knowledge bases: create, upload documents (text, markdown, PDF), watch their chunks being
// embedded, delete documents and whole bases.
import { useCallback } from 'preact/hooks';
import { request } from '../api.js';
import { Action, Badge, Empty, Field, fileBase64, fmt, Form, Loaded, Page, Table, useCan, useLoad, usePoll } from '../ui.jsx';

const enc = encodeURIComponent;
const TYPES = { md: 'text/markdown', markdown: 'text/markdown', txt: 'text/plain', pdf: 'application/pdf' };

function contentType(file) {
  if (['text/plain', 'text/markdown', 'application/pdf'].includes(file.type)) return file.type;
  return TYPES[file.name.split('.').pop().toLowerCase()] || null;
}

export function KnowledgeBases() {
  const can = useCan();
  const list = useLoad(() => request('GET', '/v1/ai-agent/knowledge-bases'));
  const create = async (form) => {
    const kb = await request('POST', '/v1/ai-agent/knowledge-bases', {
      name: form.name.value.trim(), description: form.description.value.trim(),
    });
    form.reset();
    location.hash = `#/kbs/${enc(kb.knowledgeBaseId)}`;
  };
  return (
    <Page title="Knowledge bases">
      {can.use && (
        <Form onSubmit={create} submit="Create knowledge base" label="Create a knowledge base">
          <h2>New knowledge base</h2>
          <div class="row wrap">
            <Field label="Name"><input name="name" required maxLength={100} placeholder="Biology, year 9" /></Field>
            <Field label="Description"><input name="description" maxLength={500} placeholder="Course notes and handouts" /></Field>
          </div>
        </Form>
      )}
      <Loaded state={list} what="knowledge bases">{(d) => (
        <Table caption="Knowledge bases" head={['Name', 'Documents', 'Chunks', 'Created']}
          empty={<Empty title="No knowledge bases yet.">{can.use ? 'Create one above, then upload notes or PDFs: the AI cites them in its answers.' : 'Knowledge bases your team creates show here.'}</Empty>}
          rows={d.knowledgeBases.map((kb) => (
            <tr key={kb.knowledgeBaseId}><td><a href={`#/kbs/${enc(kb.knowledgeBaseId)}`}>{kb.name}</a><div class="muted">{kb.description}</div></td>
              <td>{kb.documentCount}</td><td>{kb.chunkCount}</td><td>{fmt.date(kb.createdAt)}</td></tr>
          ))} />
      )}</Loaded>
    </Page>
  );
}

export function KnowledgeBase({ kbId }) {
  const can = useCan();
  const kb = useLoad(() => request('GET', `/v1/ai-agent/knowledge-bases/${enc(kbId)}`), [kbId]);
  const docs = useLoad(() => request('GET', `/v1/ai-agent/knowledge-bases/${enc(kbId)}/documents`), [kbId]);
  const working = Boolean(docs.data && docs.data.documents.some((x) => !['ready', 'failed'].includes(x.status)));
  const refresh = useCallback(() => { docs.reload(); kb.reload(); }, [docs.reload, kb.reload]);
  usePoll(refresh, 2000, working);
  const upload = async (form) => {
    const file = form.file.files[0];
    if (!file) throw new Error('Choose a file first.');
    const type = contentType(file);
    if (!type) throw new Error('Upload a text (.txt), markdown (.md) or PDF file.');
    const body = { title: form.title.value.trim() || file.name, contentType: type };
    if (type === 'application/pdf') body.contentBase64 = await fileBase64(file);
    else body.content = await file.text();
    await request('POST', `/v1/ai-agent/knowledge-bases/${enc(kbId)}/documents`, body);
    form.reset();
    refresh();
  };
  const base = `/v1/ai-agent/knowledge-bases/${enc(kbId)}`;
  return (
    <Page title={kb.data ? kb.data.name : 'Knowledge base'} actions={<>
      <a href="#/kbs">All knowledge bases</a>
      {can.use && <Action danger confirm="Delete this knowledge base and every document in it?"
        onDone={() => { location.hash = '#/kbs'; }} run={() => request('DELETE', base)}>Delete knowledge base</Action>}
    </>}>
      {!kb.data && <Loaded state={kb} what="the knowledge base">{() => null}</Loaded>}
      {kb.data && <p class="muted">{kb.data.description} · {kb.data.documentCount} documents · {kb.data.chunkCount} chunks · {kb.data.embeddingModel}</p>}
      {can.use && (
        <Form onSubmit={upload} submit="Upload document" label="Upload a document">
          <h2>Add a document</h2>
          <div class="row wrap">
            <Field label="Title"><input name="title" maxLength={200} placeholder="Chapter 2" /></Field>
            <Field label="File (text, markdown or PDF)"><input name="file" type="file" accept=".txt,.md,.markdown,.pdf,text/plain,text/markdown,application/pdf" required /></Field>
          </div>
        </Form>
      )}
      <h2>Documents</h2>
      <Loaded state={docs} what="documents">{(d) => (
        <Table caption="Documents" head={['Title', 'Type', 'Status', 'Chunks', 'Size', 'Added', ...(can.use ? [''] : [])]}
          empty={<Empty title="No documents yet.">{can.use ? 'Upload notes, handouts or PDFs above.' : 'Documents appear here once added.'}</Empty>}
          rows={d.documents.map((doc) => (
            <tr key={doc.documentId}><td>{doc.title}</td><td>{doc.contentType}</td>
              <td><Badge value={doc.status} />{doc.error && <div class="error">{doc.error}</div>}</td>
              <td>{doc.embeddedChunks} / {doc.chunkCount}</td><td>{fmt.bytes(doc.sizeBytes)}</td><td>{fmt.date(doc.createdAt)}</td>
              {can.use && <td><Action danger label={`Delete ${doc.title}`} confirm={`Delete "${doc.title}"?`} onDone={refresh}
                run={() => request('DELETE', `${base}/documents/${enc(doc.documentId)}`)}>Delete</Action></td>}</tr>
          ))} />
      )}</Loaded>
    </Page>
  );
}
