/** Places a task chain's nodes top to bottom with dagre (dependencies above the tasks that wait for them). */
import dagre from '@dagrejs/dagre'
import type { TaskGraph, TaskStatus } from '@/api'

export const NODE_WIDTH = 190
export const NODE_HEIGHT = 34

export interface PlacedNode {
  id: number
  name: string
  status: TaskStatus
  /** Top-left corner, as Vue Flow places a node. */
  x: number
  y: number
}

export interface GraphLayout {
  nodes: PlacedNode[]
  edges: { from: number; to: number }[]
  width: number
  height: number
}

export function layoutGraph(graph: Pick<TaskGraph, 'nodes' | 'edges'>): GraphLayout {
  const g = new dagre.graphlib.Graph()
  g.setGraph({ rankdir: 'TB', nodesep: 24, ranksep: 30, marginx: 8, marginy: 8 })
  g.setDefaultEdgeLabel(() => ({}))
  const ids = new Set(graph.nodes.map((node) => node.id))
  for (const node of graph.nodes) g.setNode(String(node.id), { width: NODE_WIDTH, height: NODE_HEIGHT })
  const edges = graph.edges.filter((edge) => ids.has(edge.from) && ids.has(edge.to))
  for (const edge of edges) g.setEdge(String(edge.from), String(edge.to))
  dagre.layout(g)
  const nodes = graph.nodes.map((node) => {
    const placed = g.node(String(node.id)) as { x: number; y: number }
    return { ...node, x: placed.x - NODE_WIDTH / 2, y: placed.y - NODE_HEIGHT / 2 }
  })
  const label = g.graph() as { width?: number; height?: number }
  return { nodes, edges, width: label.width ?? 0, height: label.height ?? 0 }
}
