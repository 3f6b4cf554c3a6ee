/** docs/api.md is generated from the API's OpenAPI document; this fails when someone changes a route and not it. */
import { readFileSync } from 'node:fs';
import { API_DOC, openApiDocument, renderMarkdown } from '../../scripts/api-docs';

it('docs/api.md matches the routes (regenerate: node --import tsx scripts/api-docs.ts)', async () => {
  const expected = renderMarkdown(await openApiDocument());
  expect(readFileSync(API_DOC, 'utf8')).toBe(expected);
  expect(expected).toMatch(/### `POST \/v1\/jobs`/);
});
