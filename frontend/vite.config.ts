/// <reference types="vitest/config" />
import { fileURLToPath, URL } from 'node:url'
import { defineConfig } from 'vite'
import vue from '@vitejs/plugin-vue'
import Components from 'unplugin-vue-components/vite'
import { ElementPlusResolver } from 'unplugin-vue-components/resolvers'

const API_TARGET = process.env.TASK_SYSTEM_API ?? 'http://127.0.0.1:5000'

export default defineConfig({
  plugins: [
    vue(),
    // Only Element Plus template components are resolved automatically; script imports stay explicit.
    Components({ dts: false, resolvers: [ElementPlusResolver({ importStyle: 'css' })] }),
  ],
  resolve: {
    alias: { '@': fileURLToPath(new URL('./src', import.meta.url)) },
  },
  define: {
    __VUE_I18N_FULL_INSTALL__: true,
    __VUE_I18N_LEGACY_API__: false,
    __INTLIFY_PROD_DEVTOOLS__: false,
  },
  server: {
    proxy: {
      '/api': { target: API_TARGET, changeOrigin: true, ws: true },
    },
  },
  build: {
    outDir: 'dist',
    assetsDir: 'assets',
    emptyOutDir: true,
    modulePreload: {
      // CodeEditor retries a failed CodeMirror load by URL (utils/retryImport.ts); that works only while the
      // vendor chunk behind codemirrorSetup was never fetched, and a failed preload would be remembered for good.
      resolveDependencies: (filename, deps) => (filename.includes('codemirrorSetup') ? [] : deps),
    },
    rolldownOptions: {
      output: {
        // Named vendor chunks cache well across releases; the editors load only with the pages that use them.
        codeSplitting: {
          groups: [
            { name: 'vendor-vue', test: /node_modules[\\/](@vue|vue|vue-router|pinia|vue-i18n|@intlify)[\\/]/ },
            { name: 'vendor-codemirror', test: /node_modules[\\/](@codemirror|@lezer|codemirror|crelt|style-mod|w3c-keyname|@marijn)[\\/]/ },
            { name: 'vendor-xterm', test: /node_modules[\\/]@xterm[\\/]/ },
          ],
        },
      },
    },
  },
  test: {
    environment: 'happy-dom',
    include: ['tests/**/*.test.ts'],
    css: false,
    // Element Plus style imports are .css files; let Vite (not Node) load them in tests.
    server: { deps: { inline: ['element-plus'] } },
  },
})
