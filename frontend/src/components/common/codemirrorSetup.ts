import { basicSetup, minimalSetup } from 'codemirror'
import { EditorState } from '@codemirror/state'
import { EditorView, lineNumbers } from '@codemirror/view'
import { StreamLanguage } from '@codemirror/language'
import { shell } from '@codemirror/legacy-modes/mode/shell'

/**
 * Everything CodeMirror in one lazily loaded entry (its own chunk, exports kept by name), so a failed load
 * can be retried by URL: see utils/retryImport.ts and CodeEditor.vue.
 */
export interface BashEditorOptions {
  parent: HTMLElement
  doc: string
  readonly: boolean
  minHeight: string
  maxHeight: string
  onChange: (text: string) => void
}

export interface BashEditor {
  text(): string
  setText(text: string): void
  destroy(): void
}

export function createBashEditor(options: BashEditorOptions): BashEditor {
  const extensions = [
    options.readonly ? [minimalSetup, lineNumbers(), EditorState.readOnly.of(true), EditorView.editable.of(false)] : basicSetup,
    StreamLanguage.define(shell),
    EditorView.lineWrapping,
    EditorView.theme({
      '&': { fontSize: '13px', border: '1px solid var(--el-border-color)', borderRadius: '4px' },
      '&.cm-focused': { outline: 'none', borderColor: 'var(--el-color-primary)' },
      '.cm-content': { caretColor: 'var(--el-text-color-primary)' },
      '.cm-gutters': {
        backgroundColor: 'var(--el-fill-color-light)',
        color: 'var(--el-text-color-secondary)',
        borderRight: '1px solid var(--el-border-color-lighter)',
      },
      '.cm-activeLine, .cm-activeLineGutter': { backgroundColor: 'var(--el-fill-color)' },
      '.cm-scroller': {
        fontFamily: 'ui-monospace, SFMono-Regular, Menlo, Consolas, monospace',
        minHeight: options.minHeight,
        maxHeight: options.maxHeight,
      },
    }),
    EditorView.updateListener.of((update) => {
      if (update.docChanged) options.onChange(update.state.doc.toString())
    }),
  ]
  const view = new EditorView({ parent: options.parent, state: EditorState.create({ doc: options.doc, extensions }) })
  return {
    text: () => view.state.doc.toString(),
    setText: (text) => view.dispatch({ changes: { from: 0, to: view.state.doc.length, insert: text } }),
    destroy: () => view.destroy(),
  }
}
